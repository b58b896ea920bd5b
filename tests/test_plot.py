import json
import warnings

import pytest
import torch
from matplotlib.image import imread
from rich.cells import cell_len
from rich.console import Console

from mt import plot
from mt.errors import ConfigError, DataError, MissingFontWarning


def vertical_labels(header_lines):
    """The words written top to bottom in ``header_lines``, left to right."""
    width = max(len(line) for line in header_lines)
    padded = [line.ljust(width) for line in header_lines]
    return [word for word in ("".join(column).strip() for column in zip(*padded)) if word]


def test_table_fits_80_columns_and_shows_every_piece():
    sources = [f"·w{i}" for i in range(19)] + ["</s>"]
    targets = ["·Ein", "[bold]", "·Hund", "</s>"]  # "[bold]" must print as text, not as rich markup
    matrix = torch.softmax(torch.randn(len(targets), len(sources)), dim=-1)
    console = Console(width=80, record=True, color_system="truecolor")
    console.print(plot.render_attention_table(matrix, targets, sources))
    lines = console.export_text().splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    first_row = next(i for i, line in enumerate(lines) if "·Ein" in line)
    assert vertical_labels(lines[:first_row]) == sources
    for label in targets:
        assert sum(line.lstrip().startswith(label + " ") for line in lines) == 1


def test_a_long_source_is_split_into_blocks_with_a_note():
    sources = [f"·piece{i}" for i in range(40)]
    console = Console(width=80, record=True)
    console.print(plot.render_attention_table(torch.full((2, 40), 1 / 40), ["·A", "·internationalisation"], sources))
    text = console.export_text()
    assert "40 pieces" in text and "blocks" in text
    assert "·internationali…" in text and "·internationalisation" not in text
    assert max(cell_len(line) for line in text.splitlines()) <= 80


def test_heatmap_png_opens_with_the_expected_pixel_size(tmp_path):
    rows, columns = ["·Ein", "·Hund", "</s>"], ["·A", "·dog", ".", "</s>"]
    path = plot.plot_attention(torch.rand(3, 4), rows, columns, tmp_path / "out" / "attention.png", "transformer")
    width, height = plot.attention_figure_size(rows, columns)
    assert imread(path).shape == (height * plot.DPI, width * plot.DPI, 4)


def test_one_panel_per_head_and_format_from_the_suffix(tmp_path):
    grid = torch.rand(8, 3, 4)
    rows, columns = ["a", "b", "</s>"], ["x", "y", "z", "</s>"]
    width, height = plot.attention_figure_size(rows, columns, heads=8)
    assert (width, height) > plot.attention_figure_size(rows, columns)
    for suffix in (".svg", ".pdf"):
        assert plot.plot_attention(grid, rows, columns, tmp_path / f"heads{suffix}").stat().st_size > 0
    with pytest.raises(ConfigError, match=r"\.png"):
        plot.plot_attention(grid, rows, columns, tmp_path / "heads.jpg")


def test_chinese_labels_resolve_to_a_font_whose_character_map_has_them(tmp_path):
    from matplotlib import font_manager

    for character in "我爱机器学习":
        path = plot.font_for(character)
        assert path is not None and ord(character) in font_manager.get_font(str(path)).get_charmap(), character
    assert plot.cjk_font() == "Noto Sans SC"  # from the pylopdf-fonts-zh-cn dependency, on any machine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plot.plot_attention(torch.rand(3, 3), ["·我爱", "学习", "</s>"], ["·I", "·love", "</s>"],
                                   tmp_path / "zh.png", "en-zh")
    assert imread(path).size > 0


def test_a_plot_without_a_cjk_font_is_written_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(plot, "cjk_font", lambda: None)  # as on a machine without any CJK font
    monkeypatch.setattr(plot, "_characters", lambda font_path: frozenset(range(0x3000)))
    with pytest.warns(MissingFontWarning, match="no font here has '世你好界'") as caught:
        path = plot.plot_attention(torch.rand(3, 3), ["·你好", "世界", "</s>"], ["·Hello", "·world", "</s>"],
                                   tmp_path / "zh.png", "en-zh")
    assert len(caught) == 1 and imread(path).size > 0


def write_log(run_dir, events):
    run_dir.mkdir()
    (run_dir / "train_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")


def synthetic_events(scale):
    events = [{"event": "start", "step": 0}]
    for step in range(10, 110, 10):
        events.append({"event": "train", "step": step, "epoch": step / 50, "loss": scale * 5 / step, "lr": 1e-3,
                       "tgt_tokens_per_s": 1000.0, "elapsed": step * 3.0})
        if step % 50 == 0:
            events.append({"event": "validation", "step": step, "elapsed": step * 3.0 + 1, "dev_loss": scale * 3 / step,
                           "dev_ppl": 2.0, "dev_bleu": step / 10})
    return events + [{"event": "end", "step": 100, "elapsed": 400.0}]


def test_a_malformed_log_line_is_named(tmp_path):
    write_log(tmp_path / "run", [{"event": "start", "step": 0}])
    assert plot.read_train_log(tmp_path / "run") == [{"event": "start", "step": 0}]
    log = tmp_path / "run" / "train_log.jsonl"
    for bad_line in ("{not json", "[1, 2]", '{"step": 3}', '{"event": "train", "step": 3}'):
        log.write_text('{"event": "start", "step": 0}\n' + bad_line + "\n", encoding="utf-8")
        with pytest.raises(DataError, match="line 2"):
            plot.read_train_log(log)
    log.write_text('{"event": "start", "step": 0}\n{"event": "tra', encoding="utf-8")  # still being written
    assert plot.read_train_log(log) == [{"event": "start", "step": 0}]
    with pytest.raises(DataError, match="no training log"):
        plot.read_train_log(tmp_path / "elsewhere")


def test_learning_curves_of_two_runs(tmp_path):
    write_log(tmp_path / "small", synthetic_events(1.0))
    resumed = synthetic_events(2.0)
    write_log(tmp_path / "large", resumed[:8] + [{"event": "resume", "step": 50}] + resumed[6:])
    path = plot.plot_learning_curves([tmp_path / "small", tmp_path / "large"], tmp_path / "curves.png")
    width, height = plot.CURVES_FIGSIZE
    assert imread(path).shape == (height * plot.CURVES_DPI, width * plot.CURVES_DPI, 4)
    with pytest.raises(ConfigError, match="one label per run"):
        plot.plot_learning_curves([tmp_path / "small"], tmp_path / "curves.png", labels=["a", "b"])
