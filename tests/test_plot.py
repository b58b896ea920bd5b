import json
import warnings

import pytest
import torch
from matplotlib.image import imread
from PIL import Image
from rich.cells import cell_len
from rich.console import Console

from mt import plot
from mt.errors import ConfigError, DataError, MissingFontWarning


def table_lines(matrix, targets, sources, width=80):
    console = Console(width=width, record=True, color_system="truecolor")
    console.print(plot.render_attention_table(matrix, targets, sources))
    return console.export_text().splitlines()


def test_table_fits_80_columns_labels_each_column_on_one_line_and_marks_the_strongest_cell():
    sources = ["I", "love", "machine", "learning", "</s>"]
    targets = ["我喜欢", "[bold]", "机器", "</s>"]  # "[bold]" must print as text, not as rich markup
    matrix = torch.softmax(torch.randn(len(targets), len(sources)) * 3, dim=-1)
    lines = table_lines(matrix, targets, sources)
    assert max(cell_len(line) for line in lines) <= 80
    assert lines[0].startswith("rows: target words, columns: source words")
    assert lines[1].split() == sources
    for line, label, row in zip(lines[2:], targets, matrix.tolist()):
        assert line.split()[0] == label and line.count("*") == 1
        marked = next(cell for cell in line.split()[1:] if cell.endswith("*"))
        assert int(marked[:-1]) == round(max(row) * 100)


def test_a_wide_sentence_is_transposed_when_its_transpose_fits():
    sources = [f"word{i}" for i in range(16)] + ["</s>"]
    targets = ["猫", "睡觉", "</s>"]
    lines = table_lines(torch.full((3, 17), 1 / 17), targets, sources)
    assert max(cell_len(line) for line in lines) <= 80
    assert lines[0].startswith("rows: source words, columns: target words, % of each column")
    assert lines[1].split() == targets
    assert [line.split()[0] for line in lines[2:]] == sources


def test_a_long_source_is_split_into_blocks_with_a_note_and_cut_labels_in_a_legend():
    sources = [f"·piece{i}" for i in range(40)]
    targets = ["·A", "·internationalisation"] * 20  # as many rows: transposing would not fit either
    text = "\n".join(table_lines(torch.full((40, 40), 1 / 40), targets, sources))
    assert "40 columns" in text and "blocks" in text
    assert "cut: ·internatio… = ·internationalisation" in text
    assert max(cell_len(line) for line in text.splitlines()) <= 80
    assert all(f"·piece{i} " in text for i in range(40))


def test_heatmap_png_opens_with_the_expected_pixel_size(tmp_path):
    rows, columns = ["·Ein", "·Hund", "</s>"], ["·A", "·dog", ".", "</s>"]
    path = plot.plot_attention(torch.rand(3, 4), rows, columns, tmp_path / "out" / "attention.png", "transformer")
    width, height = plot.attention_figure_size(rows, columns)
    assert imread(path).shape == (height * plot.DPI, width * plot.DPI, 4)


@pytest.mark.parametrize("targets, sources", [(["我喜欢", "学", "机器", "。", "</s>"], ["I", "love", "machine", "learning", "</s>"]),
                                              (["a", "b", "</s>"], [f"word{i}" for i in range(24)])])
def test_a_heatmap_covers_two_thirds_of_the_figure_under_a_one_line_title(targets, sources, tmp_path):
    heads = 1
    title = "Transformer cross-attention, last layer, heads averaged\n" + "I love machine learning " * 30
    with plot._figure_style():
        figure = plot.attention_figure(torch.rand(heads, len(targets), len(sources)), targets, sources, title, "word")
        figure.draw_without_rendering()
    heatmaps = [ax.get_position() for ax in figure.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(heatmaps) == heads
    assert sum(box.width * box.height for box in heatmaps) >= 2 / 3
    shown_title = figure._suptitle.get_text()
    assert "\n" not in shown_title and shown_title.endswith("…") and shown_title.startswith("Transformer")
    path = plot.plot_attention(torch.rand(len(targets), len(sources)), targets, sources, tmp_path / "a.png", title)
    assert Image.open(path).info["Title"] == title  # the whole title, in the PNG's metadata


def test_one_panel_per_head_and_format_from_the_suffix(tmp_path):
    grid = torch.rand(8, 3, 4)
    rows, columns = ["a", "b", "</s>"], ["x", "y", "z", "</s>"]
    width, height = plot.attention_figure_size(rows, columns, heads=8)
    assert width == plot.attention_figure_size(rows, columns, heads=4)[0] and height > plot.attention_figure_size(rows, columns, heads=4)[1]
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


def test_curves_reach_the_last_step_and_a_run_too_short_for_a_curve_is_named():
    long_run = synthetic_events(1.0) + [{"event": "train", "step": 104, "elapsed": 312.0, "loss": 0.04}]
    short_run = [{"event": "train", "step": 10, "elapsed": 30.0, "loss": 0.5},
                 {"event": "validation", "step": 10, "elapsed": 31.0, "dev_loss": 0.4, "dev_bleu": 1.0}]
    figure = plot.learning_curves_figure([long_run, short_run], ["long", "short"])
    loss_by_step = figure.axes[0]
    long_line, short_line = loss_by_step.get_lines()
    assert list(long_line.get_xdata()) == list(range(10, 110, 10)) + [104] and loss_by_step.get_xlim()[1] >= 104
    assert short_line.get_marker() == "o"  # one dot, not an invisible line
    notes = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert notes and all("too short for a curve" in note and "short: 1 point" in note for note in notes)
    assert not any("long:" in note for note in notes)


def test_learning_curves_of_two_runs(tmp_path):
    write_log(tmp_path / "small", synthetic_events(1.0))
    resumed = synthetic_events(2.0)
    write_log(tmp_path / "large", resumed[:8] + [{"event": "resume", "step": 50}] + resumed[6:])
    path = plot.plot_learning_curves([tmp_path / "small", tmp_path / "large"], tmp_path / "curves.png")
    width, height = plot.CURVES_FIGSIZE
    assert imread(path).shape == (height * plot.CURVES_DPI, width * plot.CURVES_DPI, 4)
    with pytest.raises(ConfigError, match="one label per run"):
        plot.plot_learning_curves([tmp_path / "small"], tmp_path / "curves.png", labels=["a", "b"])


def test_the_title_says_which_attention_a_heatmap_shows():
    from mt.config import ModelConfig

    assert plot.attention_title(ModelConfig(arch="rnn", attention="luong-dot")) == "RNN + luong-dot attention"
    assert plot.attention_title(ModelConfig()) == "Transformer cross-attention, last layer, heads averaged"
    assert plot.attention_title(ModelConfig(), 2, "all") == "Transformer cross-attention, layer 2, all heads"
    assert plot.attention_title(ModelConfig(), 0, 3) == "Transformer cross-attention, layer 0, head 3"
