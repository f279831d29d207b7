"""Data for the global-plan tests: memmap streams of documents whose first token names them."""

import numpy as np

EOD = 2


def stream(count: int, seed: int, first_token: int, median: int = 30) -> list[np.ndarray]:
    """Documents of distinct tokens (first_token + i marks document i), each ending in EOD."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(median), 1.0, count), 1, 400).astype(int)
    return [np.r_[first_token + i, rng.integers(10, 900, n - 1), EOD].astype(np.uint16)
            for i, n in enumerate(lengths)]  # fmt: skip


def write_stream(folder, documents) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokens.npy"
    np.save(path, np.concatenate(documents))
    return str(path)


def global_rows(seen: list[dict]) -> list[dict[int, list[int]]]:
    """Per step, the union over processes of row index → row."""
    steps = len(seen[0]["targets"])
    return [{int(k): v for s in seen for k, v in s["targets"][step].items()}
            for step in range(steps)]  # fmt: skip


def built_plan(lengths, weights, **settings):
    """`build_plan` into a temporary folder, the plan read into memory."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from xlstm_data.readers.plan.build import Plan, build_plan

    with tempfile.TemporaryDirectory() as folder:
        plan = build_plan(lengths, weights, Path(folder) / "plan", **settings)
        arrays = {name: np.array(getattr(plan, name)) for name in Plan.ARRAYS}
        return dataclasses.replace(plan, **arrays)
