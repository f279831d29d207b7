"""The main job and the shipped YAML configs."""

import json
import os
import subprocess
import sys
from pathlib import Path

from xlstm_data.config import load_configs
from xlstm_data.tools.demo import build_demo_data, demo_configs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_demo_command_prints_a_sample_and_throughput(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xlstm_data.tools.cli",
            "demo",
            "--workdir",
            str(tmp_path / "demo"),
            "--steps",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "XLA_FLAGS": ""},
    )
    assert "on 8 CPU devices" in result.stdout
    assert "segment  1" in result.stdout
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["steps"] == 5 and figures["tokens_per_s"] > 0
    assert 0 <= figures["padding_fraction"] < 0.05


def test_demo_yaml_is_the_demo_mixture(tmp_path, monkeypatch):
    build_demo_data(tmp_path / ".xlstm_data_demo")
    monkeypatch.chdir(tmp_path)
    configs, weights = load_configs(CONFIGS / "demo.yaml")
    assert weights == [0.7, 0.3]
    assert configs == demo_configs(Path(".xlstm_data_demo"))


def test_example_configs_are_valid(tmp_path):
    for path in sorted(CONFIGS.glob("*.yaml")):
        if path.name == "demo.yaml":
            continue
        text = path.read_text().replace("/path/to", str(tmp_path))
        for line in text.splitlines():  # the folders the examples point at
            if "data_path:" in line and not line.lstrip().startswith("#"):
                Path(line.split("data_path:")[1].split("#")[0].strip()).mkdir(
                    parents=True, exist_ok=True
                )
        copy = tmp_path / path.name
        copy.write_text(text)
        configs, _ = load_configs(copy)
        assert configs, path
