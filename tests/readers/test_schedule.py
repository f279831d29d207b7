"""Schedules: stages of weights, row length and batch size compiled into the plan (the same on
any host count, exact resume across stages), provenance of every step, and skipping."""

import dataclasses

import jax
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_data import EOD, built_plan, global_rows, stream, write_stream
from processes import run_processes, start_processes, wait_for_files

from xlstm_data import ConfigError, load_configs, make_grain_iterator

MESH = jax.make_mesh((8,), ("data",))
SCHEDULE = [
    {"start_step": 0, "max_target_length": 32},  # keeps 8 x 64 tokens per step: 16 rows
    {"start_step": 6, "max_target_length": 64},  # 8 rows
    {"start_step": 14, "weights": {"web": 0.2, "books": 0.8}, "max_target_length": 128,
     "global_batch_size": 16, "name": "anneal"},
]  # fmt: skip


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    root = tmp_path_factory.mktemp("schedule_sources")
    web, books = stream(900, seed=1, first_token=1000), stream(300, seed=2, first_token=3000)
    return write_stream(root / "web", web), write_stream(root / "books", books)


def write_config(folder, streams, schedule=SCHEDULE, **defaults):
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "defaults": {"data_config_type": "memmap", "records": "documents", "eod_token_id": EOD,
                     "global_batch_size": 8, "max_target_length": 64, "shift_target": "inputs",
                     "plan": "global", "shuffle_data": True, "worker_count": 0,
                     "plan_dir": str(folder.parent / "plans")} | defaults,
        "datasets": [{"name": "web", "data_files": streams[0], "weight": 0.7},
                     {"name": "books", "data_files": streams[1], "weight": 0.3}],
        "schedule": schedule,
    }  # fmt: skip
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def iterator_of(path, **changes):
    configs, weights = load_configs(path)
    configs = [dataclasses.replace(c, **changes) for c in configs]
    return make_grain_iterator(configs, MESH, [0], weights)


def take(iterator, steps: int) -> dict[int, np.ndarray]:
    """Data step → global targets, for the next `steps` delivered batches."""
    out = {}
    for _ in range(steps):
        step = iterator.step
        out[step] = np.asarray(next(iterator).targets)
    return out


def markers(batch: np.ndarray) -> set[int]:
    """The documents (by their first token) that start in a batch's rows."""
    return {int(t) for t in np.unique(batch) if t >= 1000}


def test_stages_set_the_shape_weights_and_continue_the_sources(streams, tmp_path):
    path = write_config(tmp_path / "a", streams)
    with iterator_of(path) as iterator:
        shapes = []
        for _ in range(20):
            shapes.append(iterator.batch_shape())
            assert np.asarray(next(iterator).targets).shape == shapes[-1]
        report = iterator.report
    assert shapes == [(16, 32)] * 6 + [(8, 64)] * 8 + [(16, 128)] * 6
    first, second, anneal = report["stages"]
    assert (first["rows"], second["rows"]) == (96, 64)
    assert second["stream_start"] == first["stream_end"]
    assert anneal["stream_start"] == second["stream_end"]
    assert anneal["realised_token_share"] == pytest.approx([0.2, 0.8], abs=0.005)
    assert first["realised_token_share"] == pytest.approx([0.7, 0.3], abs=0.05)  # 3k tokens
    # Within the first pass, a stage reads documents the stage before did not.
    with iterator_of(path) as iterator:
        batches = take(iterator, 14)
    early = set().union(*(markers(batches[s]) for s in range(6)))
    later = set().union(*(markers(batches[s]) for s in range(6, 14)))
    assert early and later and not early & later


def test_documents_at_reproduces_every_step_from_the_sources(streams, tmp_path):
    path = write_config(tmp_path / "a", streams)
    with iterator_of(path) as iterator:
        batches = take(iterator, 17)
        sources = [i.source for i in iterator.reader.inputs]  # the memmap files, read anew
        names = [i.name for i in iterator.reader.inputs]
        ends = [i.tokens.end_ids for i in iterator.reader.inputs]
        for step in (0, 5, 6, 13, 14, 16):
            rebuilt = np.zeros_like(batches[step])
            for piece in iterator.documents_at(step):
                index = names.index(piece["source"])
                document = np.r_[np.asarray(sources[index][piece["record"]]), ends[index]]
                tokens = document[piece["start"] : piece["end"]]
                rebuilt[piece["row"], piece["offset"] : piece["offset"] + len(tokens)] = tokens
            assert (rebuilt == batches[step]).all(), step


def test_a_changed_later_stage_keeps_the_batches_before_it(streams, tmp_path):
    path = write_config(tmp_path / "a", streams)
    changed = [*SCHEDULE[:2], SCHEDULE[2] | {"weights": {"web": 0.5, "books": 0.5}}]
    other = write_config(tmp_path / "b", streams, schedule=changed)
    with iterator_of(path) as iterator:
        before = take(iterator, 10)
        state_in_stage_1 = iterator.get_state()
        take(iterator, 7)
        state_in_stage_2 = iterator.get_state()
        after = take(iterator, 2)
    with iterator_of(other) as iterator:
        again = take(iterator, 10)
        assert all((again[s] == before[s]).all() for s in before)
        iterator.set_state(state_in_stage_1)  # stage 1 did not change
        assert iterator.step == 10
        with pytest.raises(ConfigError, match="a schedule changed"):
            iterator.set_state(state_in_stage_2)
    with iterator_of(path) as iterator:
        iterator.set_state(state_in_stage_2)
        resumed = take(iterator, 2)
    assert all((resumed[s] == after[s]).all() for s in after)


def test_skipped_steps_and_documents(streams, tmp_path):
    path = write_config(tmp_path / "a", streams)
    with iterator_of(path) as iterator:
        base = take(iterator, 20)
        victims = iterator.documents_at(8)
        holds = {s: {(p["source"], p["record"]) for p in iterator.documents_at(s)} for s in base}
    with iterator_of(path, skip_steps=[3, 14]) as iterator:
        skipped = take(iterator, 18)
    assert sorted(skipped) == [s for s in range(20) if s not in (3, 14)]
    assert all((skipped[s] == base[s]).all() for s in skipped)
    # Every document of step 8 left out from step 0 on: none of them appears, and batches
    # without them are unchanged.
    names = {"web": 1000, "books": 3000}
    gone = {names[p["source"]] + p["record"] for p in victims}
    entries = [{"source": p["source"], "record": p["record"]} for p in victims]
    victim_documents = {(p["source"], p["record"]) for p in victims}
    with iterator_of(path, skip_documents=entries) as iterator:
        without = take(iterator, 20)
        state = iterator.get_state()
        counts = iterator.counts
    assert gone and counts["skipped_tokens"] > 0
    for step in range(20):
        assert not markers(without[step]) & gone
        if not holds[step] & victim_documents:
            assert (without[step] == base[step]).all()
    with iterator_of(path, skip_documents=entries) as iterator:
        iterator.set_state(state)  # the same skips
    with iterator_of(path) as iterator, pytest.raises(ConfigError, match="skip_documents"):
        iterator.set_state(state)
    later = [{"source": "web", "record": 1, "from_step": 25}]
    with iterator_of(path, skip_documents=entries + later) as iterator:
        iterator.set_state(state)  # skips from a later step on are welcome


def test_online_follows_stage_batch_sizes_and_refuses_the_rest(streams, tmp_path):
    online = {"plan": "online", "plan_dir": None}
    sizes = [{"start_step": 0}, {"start_step": 3, "global_batch_size": 16}]
    path = write_config(tmp_path / "a", streams, schedule=sizes, **online)
    with iterator_of(path) as iterator:
        plain = take(iterator, 6)
    assert [plain[s].shape for s in range(6)] == [(8, 64)] * 3 + [(16, 64)] * 3
    with iterator_of(path, skip_steps=[1, 4]) as iterator:
        skipped = take(iterator, 4)
    assert sorted(skipped) == [0, 2, 3, 5]
    assert all((skipped[s] == plain[s]).all() for s in skipped)
    refused = write_config(tmp_path / "b", streams, **online)
    with pytest.raises(ConfigError, match="changes max_target_length, which needs plan='global'"):
        iterator_of(refused)


def test_online_weights_change_at_steps_and_resume_exactly(streams, tmp_path):
    stages = [{"start_step": 0}, {"start_step": 10, "weights": {"web": 0.1, "books": 0.9}}]
    path = write_config(tmp_path / "a", streams, schedule=stages, plan="online", plan_dir=None)
    with iterator_of(path) as iterator:
        tokens = []
        for _ in range(30):
            next(iterator)
            metrics = iterator.metrics()
            tokens.append((metrics.get("tokens:web", 0), metrics.get("tokens:books", 0)))
    for steps, books in ((range(0, 10), 0.3), (range(10, 30), 0.9)):
        web_tokens, books_tokens = (sum(tokens[s][i] for s in steps) for i in (0, 1))
        assert books_tokens / (web_tokens + books_tokens) == pytest.approx(books, abs=0.08)
    with iterator_of(path) as iterator:
        take(iterator, 15)
        state = iterator.get_state()
        expected = take(iterator, 5)
    with iterator_of(path) as iterator:
        iterator.set_state(state)
        resumed = take(iterator, 5)
    assert sorted(resumed) == list(range(15, 20))
    assert all((resumed[s] == expected[s]).all() for s in expected)


@settings(max_examples=10, deadline=None)
@given(
    weights=st.lists(st.floats(0.05, 1.0), min_size=2, max_size=3),
    stage_rows=st.lists(st.integers(200, 600), min_size=1, max_size=3),
    seed=st.integers(0, 1000),
)
def test_every_stage_mixes_by_tokens_and_reads_on(weights, stage_rows, seed):
    rng = np.random.default_rng(seed)
    lengths = [rng.integers(1, 40, int(n)) for n in rng.integers(300, 1500, len(weights))]
    start, seen = [0] * len(weights), [set() for _ in weights]
    for index, rows in enumerate(stage_rows):
        stage_weights = np.roll(weights, index)
        plan = built_plan(lengths, stage_weights, row_length=128, seed=seed, window_rows=256,
                          progress=False, start=start, rows=rows)  # fmt: skip
        assert plan.num_rows == rows
        share = np.bincount(plan.piece_source, plan.piece_length, len(weights))
        share = share / share.sum()
        assert share == pytest.approx(stage_weights / stage_weights.sum(), abs=0.005)
        report = plan.report
        assert report["padding_fraction"] < 0.02
        # A stage ends with whole documents: every time it takes one, it takes all its tokens.
        keys = plan.piece_source.astype(np.int64) * 10**6 + plan.piece_document
        owners, at = np.unique(keys, return_inverse=True)
        tokens = np.bincount(at, weights=plan.piece_length)
        times = np.bincount(at, weights=plan.piece_start == 0)
        expected = [lengths[k // 10**6][k % 10**6] for k in owners.tolist()]
        assert tokens.tolist() == (times * expected).tolist()
        for source in range(len(weights)):  # each source continues its stream of passes
            taken = report["stream_end"][source] - start[source]
            documents = plan.piece_document[plan.piece_source == source]
            assert len(documents) == taken  # documents shorter than a row: one piece each
            if report["stream_end"][source] <= len(lengths[source]):  # still the first pass
                assert len(np.unique(documents)) == len(documents)
                assert not seen[source] & set(documents.tolist())
            seen[source] |= set(documents.tolist())
        start = report["stream_end"]


@pytest.mark.multiprocess
def test_same_schedule_batches_on_1_2_and_4_hosts_and_resume_in_stage_2(streams, tmp_path):
    path = write_config(tmp_path / "a", streams)
    seen = {count: run_processes(tmp_path / f"hosts{count}", count, path, "--max-steps", "18")
            for count in (1, 2, 4)}  # fmt: skip
    runs = {count: global_rows(s) for count, s in seen.items()}
    assert len(runs[1]) == 18
    # Per-source figures of every step: global, the same on every host of every host count.
    metrics = [s["metrics"] for processes in seen.values() for s in processes]
    assert all(m == metrics[0] for m in metrics)
    assert [m["stage"] for m in metrics[0]] == ["stage 0"] * 6 + ["stage 1"] * 8 + ["anneal"] * 4
    anneal = [m for m in metrics[0] if m["stage"] == "anneal"]
    books = sum(m["tokens:books"] for m in anneal) / sum(m["tokens"] for m in anneal)
    assert books == pytest.approx(0.8, abs=0.1)
    for step in range(18):
        assert runs[1][step] == runs[2][step] == runs[4][step]
        assert sorted(runs[1][step]) == list(range(len(runs[1][step])))
    checkpoint = str(tmp_path / "checkpoints")
    processes, outputs = start_processes(tmp_path / "save4", 4, path, "--mode", "save",
                                         "--save-at", "9", "--checkpoint", checkpoint)  # fmt: skip
    wait_for_files(processes, outputs)
    resumed = run_processes(tmp_path / "resume2", 2, path, "--mode", "restore",
                            "--checkpoint", checkpoint, "--max-steps", "8")  # fmt: skip
    resumed = global_rows(resumed)
    assert resumed == runs[1][9:17]  # across the boundary into the annealing stage at 14
