"""Precision choice: bf16 only where the CPU has bf16 units, and a warning when asked for elsewhere;
the allocator setting that keeps freed memory for reuse."""

import os
import platform
import warnings
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import mt.device
from cli import app
from mt.device import keep_freed_memory, resolve_precision
from mt.errors import ConfigError, SlowPrecisionWarning

CPU = torch.device("cpu")


@pytest.mark.parametrize("has_bf16_units, expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_is_bf16_only_on_a_cpu_with_bf16_units(monkeypatch, has_bf16_units, expected):
    monkeypatch.setattr(mt.device, "cpu_supports_bf16", lambda: has_bf16_units)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("auto", CPU) == expected


def test_explicit_bf16_without_bf16_units_runs_with_a_warning(monkeypatch):
    monkeypatch.setattr(mt.device, "cpu_supports_bf16", lambda: False)
    with pytest.warns(SlowPrecisionWarning, match="no bf16 units"):
        assert resolve_precision("bf16", CPU) == torch.bfloat16
    monkeypatch.setattr(mt.device, "cpu_supports_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16", CPU) == torch.bfloat16


def test_a_cpuinfo_field_is_the_value_of_its_first_line_and_empty_when_absent(monkeypatch):
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14: 96-Core\n\nprocessor\t: 1\nmodel name\t: other\n"
    monkeypatch.setattr(mt.device, "_cpuinfo", lambda: cpuinfo)
    assert mt.device.cpu_field("model name") == "AMD EPYC 9B14: 96-Core"
    assert mt.device.cpu_field("vendor_id") == "AuthenticAMD"
    assert mt.device.cpu_field("model") == ""


def test_unknown_precision_and_fp16_on_cpu_are_errors():
    with pytest.raises(ConfigError, match="unknown precision"):
        resolve_precision("fp8", CPU)
    with pytest.raises(ConfigError, match="CUDA"):
        resolve_precision("fp16", CPU)


def test_the_cli_shows_the_warning_as_one_line(monkeypatch, tiny_checkpoint):
    monkeypatch.setattr(mt.device, "cpu_supports_bf16", lambda: False)
    result = CliRunner().invoke(app, ["translate", "a b", "--checkpoint", str(tiny_checkpoint), "--precision", "bf16", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "warning: this CPU has no bf16 units" in result.output and "warnings.warn" not in result.output


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_keeps_freed_memory_unless_the_user_set_its_thresholds(monkeypatch):
    assert keep_freed_memory()
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert not keep_freed_memory()


@pytest.mark.slow
def test_importing_mt_changes_nothing_in_the_process_until_tune_process_is_called():
    import subprocess
    import sys

    names = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
    code = (f"import os, sys, cli, mt.train, mt.translate; names = {names}; before = [os.environ.get(n) for n in names]; "
            "from mt.device import tune_process; tune_process(training=sys.argv[1] == 'train'); "
            "print(*before, *(os.environ[n] for n in names))")
    env = {key: value for key, value in os.environ.items() if key not in names}
    for use, expected in (("train", ["None", "None", "64", "64"]), ("decode", ["None", "None", "1024", "64"])):
        result = subprocess.run([sys.executable, "-c", code, use], capture_output=True, text=True, env=env,
                                cwd=Path(__file__).resolve().parents[1])
        assert result.stdout.split() == expected, result.stderr


@pytest.mark.parametrize("command, capacity", [(["train", "--max-time", "soon"], "64"), (["attentions"], "1024")])
def test_mt_train_tunes_the_process_for_training_every_other_command_for_decoding(monkeypatch, command, capacity):
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    monkeypatch.setattr(mt.device, "keep_freed_memory", lambda: False)  # the allocator of the test process stays as it is
    monkeypatch.setattr(mt.device.atexit, "register", lambda function: None)
    CliRunner().invoke(app, command)
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == capacity
