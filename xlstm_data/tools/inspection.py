"""`xlstm-data inspect`: the rows of one step as a host would feed them, decoded segment by
segment, with each piece's source and record where the reader knows them (a global plan).

A row is shown as its segments in order: `[` text `]` per document piece (`⟨bos⟩`, `⟨eod⟩`
for the special tokens), then `⟨pad N⟩`. A global plan gives every piece's source, record
and token range from the stored plan; an online reader replays the steps before and knows
the source only when there is one.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.text import Text

from xlstm_data.config import load_configs
from xlstm_data.errors import ConfigError
from xlstm_data.readers.inputs import Input, open_inputs
from xlstm_data.tokenizer import Tokenizer, load_tokenizer
from xlstm_data.tools.simulate import batch_field, host_readers, run_host

SEGMENT_STYLES = ("cyan", "magenta", "green", "yellow", "blue", "red")


def inspect_step(
    path: str | os.PathLike,
    *,
    step: int = 0,
    host: int = 0,
    hosts: int = 1,
    devices_per_host: int = 1,
) -> dict[str, Any]:
    """The local batch of host `host` of `hosts` at `step`: every row's segments with their
    tokens, text, source and record (JSON-serialisable)."""
    if not 0 <= host < hosts:
        raise ConfigError(f"--host {host} is not one of the {hosts} hosts (0 to {hosts - 1}).")
    if step < 0:
        raise ConfigError(f"--step {step} is negative.")
    configs, weights = load_configs(path)
    inputs = open_inputs(configs)
    decoder = next((i.tokenizer for i in inputs if i.tokenizer), None) or _recorded_tokenizer(
        inputs
    )
    readers = host_readers(configs, weights, inputs, hosts=hosts, devices_per_host=devices_per_host)
    for _ in range(host):
        next(readers)
    reader = next(readers)
    planned = reader.settings.reader == "global"
    seen: dict[str, Any] = {}

    def keep(at: int, fields: np.ndarray) -> None:
        if at == step:
            seen["fields"] = fields

    # A plan starts at any step; an online reader replays the steps before.
    run = run_host(reader, steps=1 if planned else step + 1, first_step=step if planned else 0,
                   on_batch=keep)  # fmt: skip
    if "fields" not in seen:
        raise ConfigError(
            f"Step {step} is past the end of host {host}'s stream ({run.batches} batches)."
        )
    fields = seen["fields"]
    tokens_field = "inputs" if reader.shift_target == "targets" else "targets"
    values = batch_field(reader, fields, tokens_field)
    segmentation = batch_field(reader, fields, f"{tokens_field}_segmentation")
    first_row = host * len(fields)
    pieces = _pieces_by_row(reader, step, first_row, len(fields)) if planned else None
    rows = []
    for index in range(len(fields)):
        segments = _segments(values[index], segmentation[index])
        known = pieces.get(index, []) if pieces is not None else []
        for segment, piece in zip(segments, _align(segments, known), strict=True):
            segment |= piece or {"source": inputs[0].name if len(inputs) == 1 else None}
            input = _input_of(inputs, segment["source"])
            # The sources of a mixture share one vocabulary: any of their tokenizers decodes.
            segment["text"] = _decode(input, segment["tokens"], input.tokenizer or decoder)
        rows.append(
            {
                "row": first_row + index,
                "segments": segments,
                "padding": int((segmentation[index] == 0).sum()),
                "tokens": values[index].tolist(),
            }
        )
    return {
        "config": str(path),
        "step": step,
        "host": host,
        "hosts": hosts,
        "reader": reader.settings.reader,
        "source_tokens": run.steps[-1].source_tokens,
        "rows": rows,
    }


def documents_at(path: str | os.PathLike, step: int) -> list[dict[str, Any]]:
    """The pieces of every row of the global batch at `step` of the config at `path` (a
    global plan: `iterator.documents_at`), without building any batch."""
    configs, weights = load_configs(path)
    reader = next(host_readers(configs, weights, open_inputs(configs), hosts=1, devices_per_host=1))
    return reader.documents_at(step)


def _pieces_by_row(reader: Any, step: int, first_row: int, rows: int) -> dict[int, list]:
    """The plan's pieces of this host's rows, by local row."""
    by_row: dict[int, list] = {}
    for piece in reader.documents_at(step):
        local = piece["row"] - first_row
        if 0 <= local < rows:
            by_row.setdefault(local, []).append(piece)
    return by_row


def _segments(values: np.ndarray, segmentation: np.ndarray) -> list[dict[str, Any]]:
    """Each run of one segment id (> 0) in a row: its offset and tokens."""
    change = np.flatnonzero(np.diff(segmentation)) + 1
    bounds = [0, *change.tolist(), len(segmentation)]
    return [
        {"offset": begin, "tokens": values[begin:end].tolist()}
        for begin, end in itertools.pairwise(bounds)
        if segmentation[begin] > 0
    ]


def _align(segments: list[dict], pieces: list[dict]) -> list[dict | None]:
    """The plan piece that starts at each segment's offset (None where there is none)."""
    at = {piece["offset"]: piece for piece in pieces}
    return [
        {k: at[s["offset"]][k] for k in ("source", "record", "where", "start", "end")}
        if s["offset"] in at
        else None
        for s in segments
    ]


def _recorded_tokenizer(inputs: list[Input]) -> Tokenizer | None:
    """The tokenizer a source says made its ids (a token cache's metadata), when it is on this
    machine and is that tokenizer (the same fingerprint): without a tokenizer_path, rows still
    print as text."""
    for input in inputs:
        info = input.source.token_info
        if info.tokenizer_path and Path(info.tokenizer_path).expanduser().exists():
            tokenizer = load_tokenizer(info.tokenizer_path)
            if tokenizer.fingerprint == info.tokenizer_fingerprint:
                return tokenizer
    return None


def _input_of(inputs: list[Input], name: str | None) -> Input:
    return next((i for i in inputs if i.name == name), inputs[0])


def _decode(input: Input, tokens: list[int], tokenizer: Tokenizer | None) -> str:
    """The tokens as text, special tokens named; ids when there is no tokenizer."""
    names = {input.tokens.eod_id: "⟨eod⟩"}
    if input.tokens.bos_id is not None:
        names[input.tokens.bos_id] = "⟨bos⟩"
    parts, run = [], []
    for token in [*tokens, None]:
        if token is None or token in names:
            if run:
                parts.append(tokenizer.decode(run) if tokenizer else str(run))
                run = []
            if token is not None:
                parts.append(names[token])
        else:
            run.append(token)
    return "".join(parts)


def print_step(result: dict[str, Any], console: Console | None = None) -> None:
    """Rows in brackets, one colour per segment, each piece's source and record after it."""
    console = console or Console()
    console.print(
        f"step {result['step']}, host {result['host']} of {result['hosts']} "
        f"({result['reader']} reader): {len(result['rows'])} rows",
        style="bold",
    )
    shares = ", ".join(f"{name} {n}" for name, n in result["source_tokens"].items())
    console.print(f"tokens per source in this batch: {shares or 'not counted'}", style="dim")
    for row in result["rows"]:
        line = Text(f"row {row['row']}: ")
        for n, segment in enumerate(row["segments"]):
            style = SEGMENT_STYLES[n % len(SEGMENT_STYLES)]
            line.append("[", style="bold")
            line.append(segment["text"], style=style)
            line.append("]", style="bold")
            line.append(f"{{{_origin(segment)}}} ", style="dim")
        if row["padding"]:
            line.append(f"⟨pad {row['padding']}⟩", style="dim")
        console.print(line)


def _origin(segment: dict[str, Any]) -> str:
    """Where a piece came from, as far as it is known."""
    if segment.get("where") is not None:
        tokens = f"tokens {segment['start']}-{segment['end']}"
        return f"{segment['source']}: {segment['where']}, {tokens}"
    return segment["source"] or "source unknown online (use plan='global' for provenance)"
