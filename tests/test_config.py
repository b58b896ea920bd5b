import pytest

from mt.config import (RunConfig, apply_overrides, available_presets, build_config, config_from_dict, load_preset,
                       parse_duration, sectioned)
from mt.errors import ConfigError


def test_presets_ship_with_the_package():
    assert {"transformer-small", "transformer-tiny"} <= set(available_presets())
    small = build_config("transformer-small", None, {})
    assert (small.model.d_model, small.model.ff_dim, small.model.heads, small.model.encoder_layers) == (256, 1024, 4, 3)
    tiny = build_config("transformer-tiny", None, {})
    assert (tiny.model.d_model, tiny.model.ff_dim, tiny.model.encoder_layers, tiny.model.dropout) == (128, 256, 4, 0.3)
    # Wu et al. (2021)'s recipe for it
    assert (tiny.model.heads, tiny.model.decoder_layers, tiny.model.tie_embeddings, tiny.data.joint_vocab) == (4, 4, True, True)
    assert (tiny.train.learning_rate, tiny.train.warmup_steps, tiny.train.batch_tokens, tiny.train.label_smoothing,
            tiny.train.adam_betas) == (0.005, 2000, 4096, 0.1, (0.9, 0.98))


def test_priority_is_preset_then_file_then_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  d_model: 512\n  heads: 8\ntrain:\n  learning_rate: 0.002\n")
    config = build_config("transformer-small", path, {"train": {"learning_rate": 0.003}})
    assert config.model.d_model == 512 and config.model.ff_dim == 1024 and config.train.learning_rate == 0.003


def test_unknown_key_names_the_closest_one(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  learning_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"learning_rat.*Did you mean 'learning_rate'"):
        build_config(None, path, {})


def test_unknown_preset_and_section():
    with pytest.raises(ConfigError, match="transformer-small"):
        load_preset("transformer-smal")
    with pytest.raises(ConfigError, match="unknown key 'modle'"):
        apply_overrides(RunConfig(), {"modle": {}}, "test")


def test_wrong_types_and_impossible_values():
    with pytest.raises(ConfigError, match="d_model.*int"):
        build_config(None, None, {"model": {"d_model": "big"}})
    with pytest.raises(ConfigError, match="heads=3 must divide"):
        build_config(None, None, {"model": {"heads": 3}})
    with pytest.raises(ConfigError, match="beam size must be at least 1"):
        build_config(None, None, {"decode": {"beam_size": 0}})
    for length in (0, -5):
        with pytest.raises(ConfigError, match="maximum output length must be at least 1"):
            build_config(None, None, {"decode": {"max_length": length}})
    for alpha in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ConfigError, match="length penalty alpha must be a finite number >= 0"):
            build_config(None, None, {"decode": {"length_penalty": alpha}})
    for train in ({"cooldown_steps": 100}, {"cooldown_steps": 100, "max_steps": 50}, {"cooldown_steps": -1, "max_steps": 50}):
        with pytest.raises(ConfigError, match="cooldown_steps.*needs train.max_steps"):
            build_config(None, None, {"train": train})
    assert build_config(None, None, {"train": {"cooldown_steps": 50, "max_steps": 50}}).train.cooldown_steps == 50
    with pytest.raises(ConfigError, match="must hold a mapping of sections"):
        config_from_dict(None, "config.json")


def test_config_round_trips_through_a_dict():
    config = build_config("transformer-tiny", None, {"data": {"src_lang": "en", "tgt_lang": "zh"}})
    assert config_from_dict(config.to_dict(), "test") == config


def test_data_train_is_a_list_of_weighted_specs_and_a_single_spec_is_a_list_of_one(tmp_path):
    from mt.data import weighted_spec

    config_file = tmp_path / "mix.yaml"
    config_file.write_text("data:\n  train:\n    - tatoeba/train.tsv\n    - hsk.tsv@2\n    - cedict.tsv@0.25\n")
    assert build_config(None, config_file, {}).data.train == ["tatoeba/train.tsv", "hsk.tsv@2", "cedict.tsv@0.25"]
    assert build_config(None, None, {"data": {"train": "one.tsv"}}).data.train == ["one.tsv"]
    assert [weighted_spec(s) for s in ("hsk.tsv@2", "a@b.tsv", "name:split", "x@1e-1")] == [
        ("hsk.tsv", 2.0), ("a@b.tsv", 1.0), ("name:split", 1.0), ("x", 0.1)]
    with pytest.raises(ConfigError, match="weight must be positive"):
        weighted_spec("hsk.tsv@0")
    with pytest.raises(ConfigError, match="data.train .* must be a str or a list of them"):
        build_config(None, None, {"data": {"train": [1, 2]}})


def test_command_line_settings_go_to_their_sections_and_durations_read_as_seconds():
    options = {"arch": "rnn", "joint_vocab": False, "max_steps": None, "src_lang": "fr", "max_time": 60.0}
    assert sectioned(options) == {"data": {"joint_vocab": False, "src_lang": "fr"}, "model": {"arch": "rnn"},
                                  "train": {"max_time": 60.0}}
    with pytest.raises(ConfigError, match="Did you mean 'max_steps'"):
        sectioned({"max_stpes": 1})
    assert [parse_duration(text) for text in ("90s", "45m", "1.5h", "30")] == [90, 2700, 5400, 30]
    with pytest.raises(ConfigError, match="cannot read duration 'soon'"):
        parse_duration("soon")
