"""The doctor's report, for people: `rich` tables in the terminal, and one HTML file with its
plots embedded as PNG (matplotlib, `pip install xlstm-data[report]`) to keep or share."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

STATUS_STYLE = {"ok": "green", "warning": "yellow", "error": "bold red"}


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    checks = Table(title=f"doctor: {report['config']} on {report['hosts']} hosts")
    for column in ("check", "status", "detail"):
        checks.add_column(column, overflow="fold")
    for check in report["checks"]:
        style = STATUS_STYLE[check["status"]]
        checks.add_row(check["name"], f"[{style}]{check['status']}[/]", check["detail"])
    console.print(checks)
    if "batches" not in report:
        return
    figures = Table(title="figures")
    figures.add_column("figure")
    figures.add_column("value", overflow="fold")
    for name, value in summary_rows(report):
        figures.add_row(name, value)
    console.print(figures)
    mixture = Table(title="mixture (share of tokens)")
    for column in ("stage", "source", "target", "realised"):
        mixture.add_column(column)
    for row in report["mixture"]:
        mixture.add_row(row.get("stage", "all"), row["source"], f"{row['target']:.2%}",
                        f"{row['realised']:.2%}")  # fmt: skip
    console.print(mixture)


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    throughput, batches, epoch = report["throughput"], report["batches"], report["steps_per_epoch"]
    documents, lengths = report["documents"], report["lengths"]
    rows = [
        ("steps per epoch", _epoch_text(epoch)),
        ("batches per host", f"{batches['agreed']} (made: {batches['made_per_host']})"),
        ("padding", f"{report['padding_fraction']:.2%}"),
        (
            "documents",
            f"{documents['pieces_in_rows']} pieces in rows, {documents['split_documents']} "
            f"split, {documents['truncated_documents']} truncated "
            f"({documents['truncated_tokens']} tokens cut), "
            f"{documents['invalid_records']} invalid, {documents['empty_documents']} empty",
        ),
        ("document lengths",
         f"median {lengths['median']}, p99 {lengths['p99']} ({lengths['what']})"),
        ("tokens/s per host", f"{throughput['tokens_per_s_per_host']:,}"
         if throughput["tokens_per_s_per_host"] else "n/a (fewer than 2 batches)"),
        ("step time it can feed", f"{throughput['step_time_s']} s per step"
         if throughput["step_time_s"] else "n/a"),
        ("first batch after", f"{throughput['first_batch_s']} s"),
    ]  # fmt: skip
    return rows


def _epoch_text(epoch: dict[str, Any]) -> str:
    if epoch["exact"] is not None:
        return f"{epoch['exact']} (exact)"
    return f"about {epoch['len']} (records / global batch: an estimate when packing)"


def write_html(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """One self-contained HTML file: checks, figures, mixture and four plots."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "doctor --report needs matplotlib: pip install 'xlstm-data[report]'"
        ) from error
    matplotlib.use("Agg")
    plots = [] if "batches" not in report else _plots(report)
    checks = "".join(
        f"<tr class='{c['status']}'><td>{html.escape(c['name'])}</td><td>{c['status']}</td>"
        f"<td>{html.escape(c['detail'])}</td></tr>"
        for c in report["checks"]
    )
    figures = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>"
        for name, value in (summary_rows(report) if "batches" in report else [])
    )
    mixture = "".join(
        f"<tr><td>{html.escape(r.get('stage', 'all'))}</td><td>{html.escape(r['source'])}</td>"
        f"<td>{r['target']:.2%}</td><td>{r['realised']:.2%}</td></tr>"
        for r in report.get("mixture", [])
    )
    images = "".join(
        f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
        for title, data in plots
    )
    title = f"xlstm-data doctor: {report['config']} on {report['hosts']} hosts"
    page = _PAGE.format(
        title=html.escape(title),
        verdict="ready to launch" if report["ok"] else "fix the errors below",
        checks=checks,
        figures=figures,
        mixture=mixture,
        images=images,
    )
    path = Path(path)
    path.write_text(page)
    return path


def _plots(report: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    steps = report["per_step"]
    sources = list(dict.fromkeys(row["source"] for row in report["mixture"]))
    plots = []

    def add(title: str, draw) -> None:
        figure, axes = plt.subplots(figsize=(5.2, 3), dpi=100)
        draw(axes)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        plots.append((title, base64.b64encode(buffer.getvalue()).decode()))

    lengths = report["lengths"]

    def histogram(axes) -> None:
        edges = lengths["edges"]
        if edges:
            axes.stairs(lengths["counts"], edges, fill=True)
            axes.set_xscale("log", base=2)
        axes.set_xlabel(lengths["what"])
        axes.set_ylabel("count")

    def padding(axes) -> None:
        axes.plot([s["step"] for s in steps], [100 * (s["padding_fraction"] or 0) for s in steps])
        axes.set_xlabel("step")
        axes.set_ylabel("padding (% of slots)")

    def shares(axes) -> None:
        totals = [sum(s["source_tokens"].values()) for s in steps]
        for name in sources:
            # Shares of the tokens so far: a single batch holds few rows of each source.
            running, done = [], 0
            total_running = 0
            for s, total in zip(steps, totals, strict=True):
                done += s["source_tokens"].get(name, 0)
                total_running += total
                running.append(100 * done / total_running if total_running else 0)
            axes.plot([s["step"] for s in steps], running, label=name)
        for row in report["mixture"]:
            if "stage" not in row:  # one target for the whole run
                axes.axhline(100 * row["target"], linestyle=":", color="grey")
        axes.set_xlabel("step")
        axes.set_ylabel("share of tokens so far (%)")
        axes.legend(fontsize="small")

    def rate(axes) -> None:
        # Batches arrive in bursts (a packing window at a time): a rate over a tenth of the
        # run reads better than one per batch.
        times = np.array([t for t, _ in report["timeline"]])
        cumulative = np.cumsum([tokens for _, tokens in report["timeline"]])
        span = max(1, len(times) // 10)
        if len(times) > span:
            elapsed = np.maximum(times[span:] - times[:-span], 1e-9)
            axes.plot(times[span:], (cumulative[span:] - cumulative[:-span]) / elapsed / 1e6)
        axes.set_xlabel("seconds (host 0)")
        axes.set_ylabel(f"M tokens/s (over {span} batches)")

    add("document lengths", histogram)
    add("padding per step", padding)
    add("mixture share over steps", shares)
    add("tokens/s over time", rate)
    return plots


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 75em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}
tr.ok td:nth-child(2) {{ color: green; }} tr.warning td:nth-child(2) {{ color: #b80; }}
tr.error td:nth-child(2) {{ color: #c00; font-weight: bold; }}
figure {{ display: inline-block; margin: 0.5em; }}
</style></head>
<body>
<h1>{title}</h1>
<p><strong>{verdict}</strong></p>
<h2>Checks</h2><table><tr><th>check</th><th>status</th><th>detail</th></tr>{checks}</table>
<h2>Figures</h2><table>{figures}</table>
<h2>Mixture</h2><table><tr><th>stage</th><th>source</th><th>target</th><th>realised</th></tr>
{mixture}</table>
<h2>Plots</h2>{images}
<script>
// For headless checks: how many plots the browser decoded.
window.addEventListener("load", () => {{
  const loaded = [...document.images].filter((image) => image.naturalWidth > 0).length;
  document.body.dataset.plotsLoaded = String(loaded);
}});
</script>
</body></html>
"""
