"""Global plans: every token once per epoch, mixture shares in tokens, batches as a function of
the step on any number of hosts (real multi-process), O(1) resume on another host count."""

import itertools
import json
import threading

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_data import EOD, built_plan, global_rows, stream, write_stream
from processes import run_processes, start_processes, wait_for_files

from xlstm_data import MemmapDataConfig, make_grain_iterator
from xlstm_data.errors import InvalidRecordError
from xlstm_data.sources.memmap import MemmapDocuments

MESH = jax.make_mesh((8,), ("data",))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Three memmap streams of different sizes: (path, documents) each."""
    root = tmp_path_factory.mktemp("plan_sources")
    out = []
    for index, (count, first) in enumerate(((400, 1000), (150, 3000), (60, 5000))):
        documents = stream(count, seed=index, first_token=first)
        out.append((write_stream(root / f"source{index}", documents), documents))
    return out


def config(path, **overrides) -> dict:
    values = {
        "data_config_type": "memmap",
        "data_files": path,
        "records": "documents",
        "eod_token_id": EOD,
        "global_batch_size": 8,
        "max_target_length": 64,
        "shift_target": "inputs",
        "plan": "global",
        "shuffle_data": True,
        "worker_count": 0,
    }
    return values | overrides


def segments(batch) -> list[list[int]]:
    targets, ids = np.asarray(batch.targets), np.asarray(batch.targets_segmentation)
    return [row[s == k].tolist() for row, s in zip(targets, ids, strict=True)
            for k in range(1, s.max(initial=0) + 1)]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 90), min_size=1, max_size=60), min_size=1, max_size=3),
    st.integers(8, 32),
    st.integers(1, 6),
)
def test_every_token_of_every_document_once_per_epoch(lengths, row_length, window_rows):
    lengths = [np.array(n, dtype=np.int64) for n in lengths]
    if any(n.sum() == 0 for n in lengths):
        return
    weights = [float(n.sum()) for n in lengths]  # proportional: every document exactly once
    plan = built_plan(
        lengths, weights, row_length=row_length, seed=3, window_rows=window_rows, progress=False
    )
    covered = {}
    for row in range(plan.num_rows):
        pieces = slice(plan.row_starts[row], plan.row_starts[row + 1])
        assert plan.piece_length[pieces].sum() <= row_length
        for source, document, start, length in zip(
            plan.piece_source[pieces].tolist(), plan.piece_document[pieces].tolist(),
            plan.piece_start[pieces].tolist(), plan.piece_length[pieces].tolist(), strict=True,
        ):  # fmt: skip
            covered.setdefault((source, document), []).append((start, length))
    for source, source_lengths in enumerate(lengths):
        for document, length in enumerate(source_lengths.tolist()):
            spans = sorted(covered.get((source, document), []))
            assert sum(n for _, n in spans) == length
            assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(spans))


def test_mixture_token_shares_match_the_weights(sources):
    lengths = [np.array([len(d) for d in documents]) for _, documents in sources]
    plan = built_plan(
        lengths, [0.5, 0.3, 0.2], row_length=64, seed=0, window_rows=64, progress=False
    )
    shares = np.array(plan.report["realised_token_share"])
    assert np.abs(shares - [0.5, 0.3, 0.2]).max() < 0.005
    assert plan.report["largest_share_deviation"] < 0.005
    assert plan.report["epochs_per_source"][0] == pytest.approx(1.0, abs=0.01)
    assert min(plan.report["epochs_per_source"]) >= 0.99
    # Tokens actually in the rows agree with the report.
    tokens = np.bincount(plan.piece_source, weights=plan.piece_length, minlength=3)
    assert np.abs(tokens / tokens.sum() - shares).max() < 1e-5
    assert plan.report["padding_fraction"] < 0.02


def test_iterator_yields_each_document_once_per_epoch(sources, tmp_path):
    path, documents = sources[0]
    setup = MemmapDataConfig(
        **config(path, num_epochs=1, drop_remainder=False, plan_dir=str(tmp_path))
    )
    iterator = make_grain_iterator(setup, MESH, [0])
    with iterator:
        assert len(iterator) == -(-iterator.report["rows"] // 8)
        found = [s for batch in iterator for s in segments(batch)]
    expected = [d[i : i + 64].tolist() for d in documents for i in range(0, len(d), 64)]
    assert sorted(found) == sorted(expected)
    # `read_tokens` counts the records read: each document at least once.
    total = sum(map(len, documents))
    assert total <= iterator.counts["read_tokens"] < 1.5 * total


def test_an_epoch_of_long_documents_reads_each_about_once(tmp_path):
    # Documents of 1 to 60 rows: shuffled blocks end only where no document crosses, so a
    # document is read again only where one read's rows end inside it (1.30x before).
    rng = np.random.default_rng(0)
    lengths = rng.lognormal(np.log(300), 1.0, 300).astype(int) + 1
    documents = [np.r_[rng.integers(10, 900, n), EOD].astype(np.uint16) for n in lengths]
    path = write_stream(tmp_path / "long", documents)
    setup = MemmapDataConfig(
        **config(path, num_epochs=1, drop_remainder=False, plan_dir=str(tmp_path))
    )
    with make_grain_iterator(setup, MESH, [0]) as iterator:
        found = [s for batch in iterator for s in segments(batch)]
    expected = [d[i : i + 64].tolist() for d in documents for i in range(0, len(d), 64)]
    assert sorted(found) == sorted(expected)
    total = sum(map(len, documents))
    assert total <= iterator.counts["read_tokens"] < 1.1 * total


def test_state_is_the_step_and_restores_exactly(sources, tmp_path):
    path, _ = sources[1]
    setup = MemmapDataConfig(
        **config(path, plan_dir=str(tmp_path), batch_rampup_factors={0: 1.0, 4: 2.0})
    )
    with make_grain_iterator(setup, MESH, [0]) as iterator:
        for _ in range(7):
            next(iterator)
        state = json.loads(json.dumps(iterator.get_state()))
        expected = [np.asarray(next(iterator).targets) for _ in range(3)]
    assert set(state) == {"version", "step", "window_step", "fingerprint"} and state["step"] == 7
    with make_grain_iterator(setup, MESH, [0]) as resumed:
        resumed.set_state(state)
        for batch in expected:
            np.testing.assert_array_equal(np.asarray(next(resumed).targets), batch)
    other = MemmapDataConfig(**config(path, plan_dir=str(tmp_path), data_shuffle_seed=1))
    with (
        make_grain_iterator(other, MESH, [0]) as different,
        pytest.raises(ValueError, match="belongs to plan"),
    ):
        different.set_state(state)


def test_plan_is_built_once_and_rebuilt_when_inputs_change(sources, tmp_path):
    path, _ = sources[2]
    for _ in range(2):
        with make_grain_iterator(
            MemmapDataConfig(**config(path, plan_dir=str(tmp_path))), MESH, [0]
        ) as iterator:
            next(iterator)

    def plans() -> list:  # the plan folders (`lengths/` keeps the sources' length digests)
        return [p for p in tmp_path.iterdir() if p.name != "lengths"]

    assert len(plans()) == 1
    longer = MemmapDataConfig(**config(path, plan_dir=str(tmp_path), max_target_length=32))
    with make_grain_iterator(longer, MESH, [0]) as iterator:
        next(iterator)
    assert len(plans()) == 2


def test_online_only_sources_are_refused(text_data, sp_model):
    from xlstm_data import GrainArrayRecordsDataConfig

    setup = GrainArrayRecordsDataConfig(
        data_path=text_data,
        global_batch_size=8,
        max_target_length=32,
        tokenizer_path=str(sp_model),
        plan="global",
    )
    # Said first: without it, the missing plan_dir would be the error, and then this one.
    with pytest.raises(ValueError, match="needs document lengths"):
        make_grain_iterator(setup, MESH, [0])


STEPS = (0, 1, 57)


@pytest.mark.multiprocess
def test_same_global_batches_on_1_2_and_4_hosts_and_resume_from_4_on_2(sources, tmp_path):
    path, _ = sources[0]
    setup = config(path, plan_dir=str(tmp_path / "plans"), global_batch_size=16)
    runs = {count: global_rows(run_processes(tmp_path / f"hosts{count}", count, setup,
                                             "--max-steps", "58"))
            for count in (1, 2, 4)}  # fmt: skip
    for step in STEPS:
        assert runs[1][step] == runs[2][step] == runs[4][step]
        assert sorted(runs[1][step]) == list(range(16))
    # Save at step 9 on 4 processes, kill them, resume on 2.
    checkpoint = str(tmp_path / "checkpoints")
    processes, outputs = start_processes(
        tmp_path / "save4", 4, setup, "--mode", "save", "--save-at", "9", "--checkpoint", checkpoint
    )
    wait_for_files(processes, outputs)
    resumed = global_rows(
        run_processes(
            tmp_path / "resume2",
            2,
            setup,
            "--mode",
            "restore",
            "--checkpoint",
            checkpoint,
            "--max-steps",
            "5",
        )
    )
    assert resumed == runs[1][9:14]


def test_worker_processes_and_device_prefetch_give_the_same_plan_batches(sources, tmp_path):
    path, _ = sources[0]
    base = config(path, plan_dir=str(tmp_path))
    iterators = [
        make_grain_iterator(MemmapDataConfig(**(base | extra)), MESH, [0])
        for extra in ({}, {"worker_count": 2}, {"device_prefetch": 2})
    ]
    with iterators[0], iterators[1], iterators[2]:
        for _ in range(40):  # several reads per worker
            expected, *others = (np.asarray(next(i).targets) for i in iterators)
            for other in others:
                np.testing.assert_array_equal(other, expected)


@pytest.mark.parametrize("workers", [0, 2])
def test_read_threads_of_this_process_finish_the_batches_they_make(sources, tmp_path, workers):
    """The loader's transfer runs where a batch is made: in this process's read threads, off
    the consuming thread; after worker processes, in the consuming thread."""
    from xlstm_data.api import build_reader

    path, _ = sources[0]
    reader = build_reader(
        MemmapDataConfig(**config(path, plan_dir=str(tmp_path), worker_count=workers))
    )
    threads = set()

    def finish(batch):
        threads.add(threading.current_thread())
        fields, counts = batch
        return fields.copy(), counts

    plain = itertools.islice(iter(reader.batches(0)), 150)  # several reads of 64 steps
    finished = itertools.islice(iter(reader.batches(0, finish=finish)), 150)
    for (fields, counts), (done, done_counts) in zip(plain, finished, strict=True):
        np.testing.assert_array_equal(done, fields)
        assert done_counts == counts
    consumer = threading.current_thread()
    if workers:
        assert threads == {consumer}
    else:
        assert threads and consumer not in threads


@settings(max_examples=80, deadline=None)
@given(st.data(), st.integers(1, 3000), st.integers(1, 64), st.integers(0, 2**16), st.booleans())
def test_every_epoch_visits_every_row_once_in_blocks(data, num_rows, batch, seed, shuffle):
    from xlstm_data.readers.plan.batches import SHUFFLE_BLOCK_ROWS, EpochSlots, shuffle_blocks

    # Groups of 1 to 300 rows (a long document's rows), cut into blocks of about 64 rows.
    sizes = data.draw(st.lists(st.integers(1, 300), min_size=num_rows, max_size=num_rows))
    group_starts = np.unique(np.minimum(np.cumsum([0, *sizes]), num_rows))[:-1]
    blocks = shuffle_blocks(group_starts)
    assert blocks[0] == 0 and np.isin(blocks, group_starts).all()
    for a, b in itertools.pairwise([*blocks.tolist(), num_rows]):
        # A block ends at the first group start past its stretch of 64 rows.
        inside = group_starts[(group_starts > a) & (group_starts < b)]
        assert (inside // SHUFFLE_BLOCK_ROWS == a // SHUFFLE_BLOCK_ROWS).all()
    slots = EpochSlots(
        num_rows, block_starts=blocks, global_batch_size=batch, drop_remainder=False,
        max_steps_per_epoch=None, num_epochs=2, shuffle=shuffle, seed=seed,
    )  # fmt: skip
    epochs = [
        slots.rows(np.arange(e, e + slots.slots_per_epoch)) for e in (0, slots.slots_per_epoch)
    ]
    for rows in epochs:
        assert sorted(rows[rows >= 0].tolist()) == list(range(num_rows))
        assert (rows[num_rows:] == -1).all()  # padding slots close the epoch
        if shuffle:  # rows of one block stay consecutive: an epoch never cuts a group
            real = rows[rows >= 0]
            assert ((np.diff(real) == 1) | np.isin(real[1:], blocks)).all()
            assert real[0] in blocks


def test_a_stored_plan_opens_without_reading_document_lengths(sources, tmp_path, monkeypatch):
    path, _ = sources[0]
    setup = MemmapDataConfig(**config(path, plan_dir=str(tmp_path)))
    with make_grain_iterator(setup, MESH, [0]) as iterator:
        expected = np.asarray(next(iterator).targets)
        fingerprint = iterator.reader.fingerprint

    def unread(self):
        raise AssertionError("a stored plan must open without the document lengths")

    monkeypatch.setattr(MemmapDocuments, "document_lengths", unread)
    with make_grain_iterator(setup, MESH, [0]) as iterator:
        assert iterator.reader.fingerprint == fingerprint
        assert (np.asarray(next(iterator).targets) == expected).all()


def test_ids_outside_the_vocabulary_name_their_document(tmp_path):
    documents = stream(40, seed=7, first_token=1000)
    documents[13][3] = 1500  # the vocabulary below has 1100 ids
    path = write_stream(tmp_path / "bad", documents)
    setup = MemmapDataConfig(
        **config(path, vocab_size=1100, num_epochs=1, plan_dir=str(tmp_path / "plans"))
    )
    with pytest.raises(
        InvalidRecordError, match=r"document 13 of .*tokens\.npy holds ids outside \[0, 1100\)"
    ):
        for _ in make_grain_iterator(setup, MESH, [0]):
            pass


def test_each_source_of_a_planned_mixture_is_checked_against_its_own_vocabulary(tmp_path):
    # Source 1's ids (3000…) are fine in its vocabulary of 4000 but outside source 0's 1100:
    # only source 0's bad document may be named, whatever rows the two share.
    small = stream(60, seed=1, first_token=1000)
    small[21][2] = 1500
    large = stream(60, seed=2, first_token=3000)
    paths = [write_stream(tmp_path / "small", small), write_stream(tmp_path / "large", large)]
    configs = [
        MemmapDataConfig(**config(path, vocab_size=vocab, num_epochs=1, plan_dir=str(tmp_path)))
        for path, vocab in zip(paths, (1100, 4000), strict=True)
    ]
    with pytest.raises(
        InvalidRecordError, match=r"document 21 of .*small.*holds ids outside \[0, 1100\)"
    ):
        for _ in make_grain_iterator(configs, MESH, [0], dataset_weights=[0.5, 0.5]):
            pass
    with make_grain_iterator(configs[1], MESH, [0]) as iterator:
        assert sum(1 for _ in iterator) > 0  # ids 3000… pass in a vocabulary of 4000
