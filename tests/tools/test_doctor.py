"""`xlstm-data doctor`: its predictions against a real 4-process run, its checks, its report."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import yaml
from plan_data import EOD, stream, write_stream
from processes import run_processes

from xlstm_data.tools.cli import main
from xlstm_data.tools.doctor import diagnose
from xlstm_data.tools.report import write_html


def write_yaml(path, document) -> str:
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def mixture_yaml(tmp_path, cache, text_data, sp_model):
    """A token cache and tokenized ArrayRecord text, 0.6 / 0.4, one finite epoch."""
    return write_yaml(
        tmp_path / "mixture.yaml",
        {
            "defaults": {
                "global_batch_size": 8,
                "max_target_length": 48,
                "grain_packing": True,
                "shuffle_data": True,
                "num_epochs": 1,
                "worker_count": 0,
            },
            "datasets": [
                {"data_config_type": "token_cache", "name": "cache", "cache_path": str(cache),
                 "weight": 0.6},
                {"data_config_type": "grain_arrayrecord", "name": "text",
                 "data_path": str(text_data), "tokenize_data": True,
                 "tokenizer_path": str(sp_model), "weight": 0.4},
            ],
        },
    )  # fmt: skip


def real_host_figures(seen: dict) -> dict:
    """Batches, tokens, slots and per-source tokens one real process delivered."""
    tokens = slots = 0
    for segmentation in seen["segmentation"]:
        rows = np.array(list(segmentation.values()))
        tokens, slots = tokens + int(np.count_nonzero(rows)), slots + rows.size
    sources: dict = {}
    for step in seen["sources"]:
        for name, count in step.items():
            sources[name] = sources.get(name, 0) + count
    return {"batches": len(seen["shapes"]), "tokens": tokens, "slots": slots, "sources": sources}


@pytest.mark.multiprocess
def test_doctor_predicts_a_real_four_process_run(tmp_path, mixture_yaml):
    report = diagnose(mixture_yaml, hosts=4, devices_per_host=2, steps=1000, progress=False)
    assert report["ok"], report["checks"]
    seen = run_processes(tmp_path / "run", 4, mixture_yaml)
    real = [real_host_figures(s) for s in seen]
    predicted = report["hosts_detail"]
    assert report["batches"]["agreed"] > 10
    for host, figures in enumerate(real):
        assert figures["batches"] == report["batches"]["agreed"] == predicted[host]["batches"]
        assert figures["tokens"] == predicted[host]["tokens"]
        padding = 1 - figures["tokens"] / figures["slots"]
        assert padding == pytest.approx(predicted[host]["padding_fraction"], abs=1e-6)
        assert figures["sources"] == predicted[host]["source_tokens"]
    total = sum(f["tokens"] for f in real)
    realised = {row["source"]: row["realised"] for row in report["mixture"]}
    for name in ("cache", "text"):
        share = sum(f["sources"][name] for f in real) / total
        assert share == pytest.approx(realised[name], abs=1e-6)
    assert realised["cache"] == pytest.approx(0.6, abs=0.05)


def test_doctor_reports_a_planned_token_cache(tmp_path, cache):
    config = write_yaml(
        tmp_path / "plan.yaml",
        {"data_config_type": "token_cache", "cache_path": str(cache), "global_batch_size": 8,
         "max_target_length": 64, "grain_packing": True, "plan": "global",
         "plan_dir": str(tmp_path / "plans"), "num_epochs": 1, "worker_count": 0},
    )  # fmt: skip
    report = diagnose(config, hosts=2, steps=20, progress=False)
    assert report["ok"], report["checks"]
    assert report["batches"] == {"made_per_host": [20, 20], "agreed": 20}
    assert report["plan"]["fingerprint"] and report["steps_per_epoch"]["exact"] > 20
    assert 0 <= report["padding_fraction"] < 0.05
    assert report["lengths"]["what"].startswith("tokens per document (all")
    assert sum(report["lengths"]["counts"]) == 600
    assert report["throughput"]["tokens_per_s_per_host"] > 0
    assert report["throughput"]["step_time_s"] > 0
    assert report["mixture"][0]["realised"] == 1.0


def test_doctor_fails_with_the_fix(tmp_path, cache, capsys):
    config = write_yaml(
        tmp_path / "bad.yaml",
        {"data_config_type": "token_cache", "cache_path": str(cache), "global_batch_size": 6,
         "max_target_length": 64},
    )  # fmt: skip
    with pytest.raises(SystemExit) as exit:
        main(["doctor", str(config), "--hosts", "4", "--devices-per-host", "2", "--quiet"])
    assert exit.value.code == 1
    assert "not divisible by the 4 hosts; use a multiple of 8" in capsys.readouterr().err
    missing = write_yaml(
        tmp_path / "missing.yaml",
        {"data_config_type": "token_cache", "cache_path": str(tmp_path / "nowhere"),
         "global_batch_size": 8, "max_target_length": 64},
    )  # fmt: skip
    report = diagnose(missing, hosts=2, progress=False)
    assert not report["ok"]
    assert str(tmp_path / "nowhere") in report["checks"][-1]["detail"]


def test_doctor_json_and_warning_on_uneven_hosts(tmp_path, token_data, capsys):
    root, _ = token_data
    config = write_yaml(
        tmp_path / "records.yaml",
        {"data_config_type": "grain_arrayrecord", "data_path": str(root), "tokenize_data": False,
         "eod_token_id": 5, "global_batch_size": 4, "max_target_length": 32,
         "grain_packing": True, "num_epochs": 1, "worker_count": 0},
    )  # fmt: skip
    main(["doctor", str(config), "--hosts", "4", "--json"])
    report = json.loads(capsys.readouterr().out)
    made, agreed = report["batches"]["made_per_host"], report["batches"]["agreed"]
    assert agreed == min(made)  # drop_remainder=True: all stop with the first
    status = next(c for c in report["checks"] if c["name"] == "hosts agree")["status"]
    assert status == ("ok" if len(set(made)) == 1 else "warning")
    assert [h["batches"] for h in report["hosts_detail"]] == [agreed] * 4


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_html_report_renders_in_a_headless_browser(tmp_path, mixture_yaml):
    browser = chromium()
    if browser is None:
        if os.environ.get("XLSTM_DATA_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (scripts/test.sh installs it)")
        pytest.skip("chromium is not installed")
    report = diagnose(mixture_yaml, hosts=2, steps=30, progress=False)
    page = write_html(report, tmp_path / "report.html")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
               "--virtual-time-budget=5000", "--dump-dom", page.as_uri()]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    assert 'data-plots-loaded="4"' in dom, dom[-2000:]
    for title in ("document lengths", "padding per step", "mixture share over steps",
                  "tokens/s over time"):  # fmt: skip
        assert f"<figcaption>{title}</figcaption>" in dom
    assert "ready to launch" in dom and "cache" in dom


def test_doctor_and_documents_on_a_schedule(tmp_path, capsys):
    web = write_stream(tmp_path / "web", stream(600, seed=1, first_token=1000))
    books = write_stream(tmp_path / "books", stream(300, seed=2, first_token=3000))
    config = write_yaml(
        tmp_path / "schedule.yaml",
        {"defaults": {"data_config_type": "memmap", "records": "documents", "eod_token_id": EOD,
                      "global_batch_size": 8, "max_target_length": 64, "shift_target": "inputs",
                      "plan": "global", "plan_dir": str(tmp_path / "plans"), "worker_count": 0},
         "datasets": [{"name": "web", "data_files": web, "weight": 0.7},
                      {"name": "books", "data_files": books, "weight": 0.3}],
         "schedule": [{"start_step": 0},
                      {"start_step": 30, "weights": {"web": 0.1, "books": 0.9}}]},
    )  # fmt: skip
    report = diagnose(config, hosts=2, steps=60, progress=False)
    assert report["ok"], report["checks"]
    shares = {(r["stage"], r["source"]): (r["target"], r["realised"]) for r in report["mixture"]}
    assert shares[("stage 1", "books")][0] == pytest.approx(0.9)
    for target, realised in shares.values():
        assert realised == pytest.approx(target, abs=0.05)
    main(["documents", str(config), "--step", "40"])
    pieces = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {p["row"] for p in pieces} == set(range(8))
    assert {p["source"] for p in pieces} <= {"web", "books"}
