"""Outputs are written whole or not at all, and never over an input (mt.files)."""

import os

import pytest

from mt.errors import OutputError
from mt.files import atomic_output, check_output, text_output


def test_an_output_that_is_an_input_is_refused_by_name_symlink_and_hard_link(tmp_path):
    source = tmp_path / "s.txt"
    source.write_text("keep me\n")
    (tmp_path / "link.txt").symlink_to("s.txt")
    os.link(source, tmp_path / "hard.txt")
    for output in (source, tmp_path / "link.txt", tmp_path / "hard.txt", tmp_path / "." / "s.txt"):
        with pytest.raises(OutputError, match="is also an input"):
            check_output(output, [source])
    assert source.read_text() == "keep me\n"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    output = tmp_path / "out.txt"
    output.write_text("old\n")
    with pytest.raises(KeyError):
        with atomic_output(output) as handle:
            handle.write("half of the new")
            raise KeyError("stopped half-way")
    assert output.read_text() == "old\n" and os.listdir(tmp_path) == ["out.txt"]


def test_a_finished_write_replaces_the_file_keeping_its_mode_and_a_symlink(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("old\n")
    target.chmod(0o640)
    (tmp_path / "out.txt").symlink_to("target.txt")
    with atomic_output(tmp_path / "out.txt") as handle:
        handle.write("new\n")
    assert (tmp_path / "out.txt").is_symlink() and target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o640 and sorted(os.listdir(tmp_path)) == ["out.txt", "target.txt"]


def test_a_missing_directory_and_a_full_disk_are_output_errors(tmp_path):
    with pytest.raises(OutputError, match="directory .*nodir does not exist"):
        check_output(tmp_path / "nodir" / "out.txt")
    with pytest.raises(OutputError, match="it is a directory"):
        check_output(tmp_path)
    with pytest.raises(OutputError, match="No space left on device"):
        with atomic_output("/dev/full") as handle:  # a device is written directly, not renamed over
            handle.write("x" * 100_000)


def test_text_output_is_the_file_written_whole_else_stdout(tmp_path, capsys):
    with text_output(None) as handle:
        handle.write("to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"
    with text_output(tmp_path / "out.txt", [tmp_path / "in.txt"]) as handle:
        handle.write("to a file\n")
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "to a file\n"
    (tmp_path / "in.txt").write_text("input\n", encoding="utf-8")
    with pytest.raises(OutputError):
        with text_output(tmp_path / "in.txt", [tmp_path / "in.txt"]):
            pass
