"""Config validation and YAML loading: every mistake names the field and the fix."""

import textwrap

import pytest
import yaml

from xlstm_data.config import (
    GrainArrayRecordsDataConfig,
    HFHubDataConfig,
    config_from_dict,
    load_configs,
)
from xlstm_data.config.schedule import resolve_stages, stage_as_dict
from xlstm_data.errors import ConfigError
from xlstm_data.sources.registry import open_source


def arecord(tmp_path, **overrides):
    values = {
        "data_path": tmp_path,
        "global_batch_size": 8,
        "max_target_length": 16,
        "tokenizer_path": "tok.model",
    }
    return GrainArrayRecordsDataConfig(**(values | overrides))


def test_valid_config_fills_in_its_type(tmp_path):
    config = arecord(tmp_path)
    assert config.data_config_type == "grain_arrayrecord"
    assert config.row_length == 16
    assert arecord(tmp_path, shift_target="targets").row_length == 17


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"max_target_length": 1}, "max_target_length"),
        ({"global_batch_size": 0}, "global_batch_size"),
        ({"worker_count": -1}, "worker_count"),
        ({"tokenizer_path": None}, "tokenizer_path"),
        ({"batch_rampup_factors": {0: -0.5}}, "batch_rampup_factors"),
        ({"batch_rampup_factors": {10: 0.3}}, "batch_rampup_factors"),
        ({"global_batch_size": "8"}, "global_batch_size"),
        ({"shift_target": "left"}, "shift_target"),
    ],
)
def test_invalid_values_name_the_field(tmp_path, overrides, field):
    with pytest.raises(ValueError, match=field):
        arecord(tmp_path, **overrides)


def test_missing_data_path_is_reported_when_the_source_opens(tmp_path):
    missing = arecord(tmp_path / "nope")  # configs are checked without touching files
    with pytest.raises(ConfigError, match="data_path.*not a folder"):
        open_source(missing)
    with pytest.raises(ConfigError, match="hf_path.*does not exist"):
        open_source(
            HFHubDataConfig(
                hf_path="./no/such/folder",
                global_batch_size=8,
                max_target_length=8,
                tokenizer_path="t",
            )
        )


def test_unknown_keys_and_types_are_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['batch_size'\]"):
        config_from_dict(
            {
                "data_config_type": "grain_arrayrecord",
                "data_path": str(tmp_path),
                "global_batch_size": 8,
                "max_target_length": 8,
                "batch_size": 3,
            }
        )
    with pytest.raises(ValueError, match="data_config_type 'csv' is unknown"):
        config_from_dict({"data_config_type": "csv"})
    with pytest.raises(ValueError, match="missing"):
        config_from_dict({"data_config_type": "huggingface", "global_batch_size": 8})
    misspelt = {"data_config_type": "token_cache", "cache_path": "c", "global_batch_size": 8,
                "max_target_lenght": 8, "weigth": 1.0}  # fmt: skip
    with pytest.raises(ConfigError, match="did you mean 'max_target_length' for 'max_target_l"):
        config_from_dict(misspelt)
    mixture = tmp_path / "mixture.yaml"
    mixture.write_text(yaml.safe_dump({"datasets": [misspelt]}))
    with pytest.raises(ConfigError, match="'weight' for 'weigth'"):  # a mixture entry's key
        load_configs(mixture)
    with pytest.raises(ConfigError, match="'datasets' for 'dataset'"):
        mixture.write_text("dataset: []\ndatasets: []\n")
        load_configs(mixture)


def test_train_eval_configs_differ_in_order_and_remainder(tmp_path):
    train, evaluation = GrainArrayRecordsDataConfig.create_train_eval_configs(
        data_path=tmp_path,
        global_batch_size=8,
        max_target_length=16,
        tokenizer_path="t",
        eval_kwargs={"global_batch_size": 4},
    )
    assert (train.shuffle_data, train.drop_remainder, train.split) == (True, True, "train")
    assert (evaluation.shuffle_data, evaluation.drop_remainder) == (False, False)
    assert (evaluation.split, evaluation.global_batch_size) == ("validation", 4)


def test_yaml_single_and_mixture(tmp_path):
    single = tmp_path / "single.yaml"
    single.write_text(
        textwrap.dedent(f"""
        data_config_type: grain_arrayrecord
        data_path: {tmp_path}
        global_batch_size: 8
        max_target_length: 32
        tokenizer_path: tok.model
        batch_rampup_factors: {{"0": 0.5, "100": 1.0}}
    """)
    )
    (config,), weights = load_configs(single)
    assert weights is None and config.batch_rampup_factors == {0: 0.5, 100: 1.0}
    mixture = tmp_path / "mixture.yaml"
    mixture.write_text(
        textwrap.dedent(f"""
        defaults: {{global_batch_size: 8, max_target_length: 32, tokenizer_path: tok.model}}
        datasets:
          - {{data_config_type: grain_arrayrecord, data_path: {tmp_path}, weight: 3}}
          - {{data_config_type: huggingface, hf_path: some/dataset, weight: 1}}
    """)
    )
    configs, weights = load_configs(mixture)
    assert [type(c).__name__ for c in configs] == ["GrainArrayRecordsDataConfig", "HFHubDataConfig"]
    assert weights == [3.0, 1.0]


def test_misspelt_schedule_keys_and_source_names_get_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'weights' for 'weigths'"):
        stage_as_dict({"start_step": 0, "weigths": [1.0]})
    with pytest.raises(ConfigError, match="did you mean 'arrayrecord' for 'arrayrecrd'"):
        resolve_stages(
            [{"start_step": 0, "weights": {"arrayrecrd": 1.0}}],
            names=["arrayrecord", "huggingface"], weights=[0.5, 0.5],
            max_target_length=8, global_batch_size=8,
        )  # fmt: skip
