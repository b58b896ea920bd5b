"""Seeing what a model learned: attention as a terminal table or a heatmap, and learning curves.

The attention of one translation is (T, L, H, S): T target pieces (+ EOS), L decoder layers,
H heads, S source pieces + EOS (``mt.translate.Translation.attention``). One view of it, between
words (``mt.alignment``)::

    attention, row_labels, col_labels = alignment_labels(translation, "word")  # or "piece"
    matrix = select_attention(attention)          # (T, S): last layer, heads averaged
    console.print(render_attention_table(matrix, row_labels, col_labels, max_width=console.width))
    plot_attention(matrix, row_labels, col_labels, Path("attention.png"), title="transformer, last layer")

Learning curves come from the ``train_log.jsonl`` of one or more runs (``mt.train``).

The library never prints: tables are rich renderables for the caller to print, plots are
files. Figures are built as ``matplotlib.figure.Figure`` objects rather than through pyplot,
so no display or GUI backend is needed (PNGs are drawn by Agg) and the caller's pyplot state
and backend are left alone.

CJK text: matplotlib's default font, DejaVu Sans, has no Chinese or Japanese glyphs. Plots put
a CJK font ahead of DejaVu Sans, and matplotlib takes each glyph from the first font in that list
that has it. The font is Noto Sans SC (SIL Open Font License), which ``mt`` depends on through the
``pylopdf-fonts-zh-cn`` package on PyPI, so that a fresh install draws Chinese; without that
package, the first installed font of ``CJK_FONTS``. With neither, the plot is still written, CJK
pieces are drawn as placeholder boxes, and ``plot_attention`` warns once (``MissingFontWarning``)
that the labels have characters no font has.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import matplotlib
import torch
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from rich.cells import cell_len
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

from mt.alignment import alignment_labels, select_attention
from mt.errors import ConfigError, DataError, MissingFontWarning
from mt.rundir import LOG_FILE

if TYPE_CHECKING:
    from mt.config import ModelConfig
    from mt.translate import Translation

COLORMAP = "viridis"  # dark for 0, yellow for 1; the same in the table and the heatmap

# Terminal table: a weight takes CELL_WIDTH terminal columns ("100" = 100%), or its label's width.
CELL_WIDTH = 3
LABEL_MAX = 12  # terminal columns of a row or column label before it is cut with "…"

# Heatmaps: sizes are whole quarter inches, so DPI * size is an exact number of pixels.
DPI = 200
CELL_INCHES = 0.3  # one attention weight, at least
CHAR_INCHES = 0.09  # one terminal column (cell_len) of a tick label
AXIS_LABEL_INCHES = 0.5  # an axis label and the ticks' padding
COLOURBAR_INCHES = 1.0
TITLE_INCHES = 0.4
TITLE_CHAR_INCHES = 0.11  # one terminal column of the title (12 pt)
# Share of the figure's area the heatmaps are sized to cover: 0.7, so that what matplotlib's paddings
# leave is still 2/3 or more (tests/test_plot.py draws and measures it).
HEATMAP_SHARE = 0.7
MAX_GRID_COLUMNS = 4  # heads per row of a grid of heatmaps
FIGURE_FORMATS = (".png", ".svg", ".pdf")

# Fonts with CJK glyphs installed on the system, in order of preference (the names matplotlib's
# font manager reports), for when the packaged Noto Sans SC (cjk_font) is absent.
CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR",
    "Source Han Sans SC", "Source Han Sans CN", "Source Han Sans",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "AR PL UKai CN",
)

# Fields the learning curves need, per event kind; a log line without them is malformed.
CURVE_FIELDS = {"train": ("step", "elapsed", "loss"), "validation": ("step", "elapsed", "dev_loss", "dev_bleu")}
# (event kind, field, panel title, y-axis label): one column of panels each.
CURVES = (
    ("train", "loss", "training loss", "loss per token (label-smoothed)"),
    ("validation", "dev_loss", "dev loss", "loss per token (perplexity = e^loss)"),
    ("validation", "dev_bleu", "dev BLEU", "BLEU"),
)
# (field, divisor, x-axis label): one row of panels each.
CLOCKS = (("step", 1, "step"), ("elapsed", 60, "training time (minutes, wall clock)"))
CURVES_FIGSIZE = (15.0, 8.0)  # inches
MIN_CURVE_POINTS = 2  # fewer points in a panel: a run too short for a curve, drawn as a dot and named
CURVES_DPI = 100


def _labelled_grid(matrix: torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str]) -> torch.Tensor:
    """(T, S) or (H, T, S) -> float32 (H, T, S) on the CPU, checked against the labels."""
    grid = torch.as_tensor(matrix).detach().float().cpu()
    grid = grid[None] if grid.dim() == 2 else grid
    if grid.dim() != 3 or tuple(grid.shape[1:]) != (len(row_labels), len(col_labels)):
        raise ValueError(f"attention of shape {tuple(torch.as_tensor(matrix).shape)} does not fit "
                         f"{len(row_labels)} row and {len(col_labels)} column labels")
    return grid


def _cell_style(weight: float) -> Style:
    """The colour map's colour for ``weight`` as background, with black or white text, whichever reads."""
    red, green, blue, _ = matplotlib.colormaps[COLORMAP](weight)
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    background = f"rgb({round(red * 255)},{round(green * 255)},{round(blue * 255)})"
    return Style(color="black" if luminance > 0.5 else "white", bgcolor=background)


def _cut(label: str, width: int) -> str:
    """``label`` cut to ``width`` terminal columns, its last one "…", when it is wider."""
    text = Text(label)
    text.truncate(width, overflow="ellipsis")
    return text.plain


def _blocks(widths: Sequence[int], room: int) -> list[tuple[int, int]]:
    """Consecutive (start, end) runs of columns of ``widths`` that each fit in ``room`` (at least one column a run)."""
    blocks, start, used = [], 0, 0
    for index, width in enumerate(widths):
        if index > start and used + width > room:
            blocks.append((start, index))
            start, used = index, 0
        used += width
    return blocks + [(start, len(widths))]


def render_attention_table(
    matrix: torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str], max_width: int = 80, unit: str = "word"
) -> Group:
    """Attention ``matrix`` (T, S) as a rich renderable no wider than ``max_width`` terminal columns.

    One row per target word or piece (``row_labels``, T; ``unit`` names them in the caption),
    one column per source one (``col_labels``, S), labelled on one line; labels wider than
    ``LABEL_MAX`` terminal columns are cut with "…" and given in full in a legend. Each cell
    shows the weight in percent (blank under 0.5%) on a background from the ``viridis`` colour
    map, dark for 0 and yellow for 1; "*" marks the strongest weight of each target row. When
    the table is wider than ``max_width`` and its transpose (a row per source label) is not, the
    transpose is shown; when neither fits, the columns are split into blocks, one table each,
    under a note that says so.
    """
    weights = _labelled_grid(matrix, row_labels, col_labels)[0]
    strongest = set(enumerate(weights.argmax(dim=-1).tolist()))  # (target, source)
    rows, columns = [_cut(label, LABEL_MAX) for label in row_labels], [_cut(label, LABEL_MAX) for label in col_labels]

    def widths(row_texts, column_texts):  # the label column, then each column: a space, the number or label, the mark
        return max(map(cell_len, row_texts)), [max(CELL_WIDTH, cell_len(text)) + 2 for text in column_texts]

    label_width, column_widths = widths(rows, columns)
    transposed = label_width + sum(column_widths) > max_width and sum(widths(columns, rows)[1]) + widths(columns, rows)[0] < (
        label_width + sum(column_widths))
    if transposed:
        weights, rows, columns = weights.T, columns, rows
        strongest = {(source, target) for target, source in strongest}
        label_width, column_widths = widths(rows, columns)
    blocks = _blocks(column_widths, max_width - label_width)
    tables = []
    for start, end in blocks:
        table = Table(box=None, padding=0, pad_edge=False, show_edge=False)
        table.add_column(width=label_width, justify="right", no_wrap=True)
        for label, width in zip(columns[start:end], column_widths[start:end]):
            table.add_column(Text(" " + label.rjust(width - 2 - cell_len(label) + len(label)) + " "), width=width, no_wrap=True)
        for row, (label, values) in enumerate(zip(rows, weights.tolist())):
            cells = []
            for column in range(start, end):
                weight, width = values[column], column_widths[column] - 2
                mark = "*" if (row, column) in strongest else " "
                number = f"{round(weight * 100):>{width}}" if weight >= 0.005 else " " * width
                cells.append(Text.assemble(" ", (number + mark, _cell_style(weight))))
            table.add_row(Text(label), *cells)
        tables.append(table)
    sides = ("source", "target", "column") if transposed else ("target", "source", "row")
    notes = [Text("rows: {} {unit}s, columns: {} {unit}s, % of each {}; * its strongest".format(*sides, unit=unit),
                  style="italic")]
    if len(blocks) > 1:
        notes.append(Text(f"{len(columns)} columns are more than fit in {max_width} terminal columns: "
                          f"shown in {len(blocks)} blocks.", style="italic"))
    cut = [f"{short} = {label}" for short, label in zip([*rows, *columns], [*(col_labels if transposed else row_labels),
                                                                          *(row_labels if transposed else col_labels)])
           if short != label]
    if cut:
        notes.append(Text("cut: " + ", ".join(dict.fromkeys(cut)), style="italic"))
    return Group(*notes[:1], *tables, *notes[1:])


def attention_figure_size(row_labels: Sequence[str], col_labels: Sequence[str], heads: int = 1) -> tuple[float, float]:
    """(width, height) in inches of ``plot_attention``'s figure, whole quarter inches: room for the
    longest tick labels, the axis labels, the colour bar and a one-line title, and cells of
    ``CELL_INCHES``: for one head, larger, as large as it takes for the heatmap to cover
    ``HEATMAP_SHARE`` of the figure; for a grid of heads, ``MAX_GRID_COLUMNS`` a row (a grid sized
    so would be metres wide)."""
    columns = min(heads, MAX_GRID_COLUMNS)
    grid_rows = math.ceil(heads / columns)
    label_width = max(map(cell_len, row_labels)) * CHAR_INCHES + AXIS_LABEL_INCHES
    label_height = max(map(cell_len, col_labels)) * CHAR_INCHES + AXIS_LABEL_INCHES + (0.3 if heads > 1 else 0.0)
    cell = CELL_INCHES
    while True:
        heatmap_width, heatmap_height = len(col_labels) * cell, len(row_labels) * cell
        width = math.ceil((columns * (heatmap_width + label_width) + COLOURBAR_INCHES) * 4) / 4
        height = math.ceil((grid_rows * (heatmap_height + label_height) + TITLE_INCHES) * 4) / 4
        if heads > 1 or heatmap_width * heatmap_height >= HEATMAP_SHARE * width * height:
            return width, height
        cell += 0.05


def one_line_title(title: str, width_inches: float) -> str:
    """``title`` on one line that fits ``width_inches`` (its line breaks as " · "), cut with "…"."""
    return _cut(" · ".join(line.strip() for line in title.splitlines() if line.strip()),
                max(int(width_inches / TITLE_CHAR_INCHES), 10))


@functools.cache
def cjk_font() -> str | None:
    """The name of a font with CJK glyphs for matplotlib: Noto Sans SC from the
    ``pylopdf-fonts-zh-cn`` package (registered with matplotlib's font manager on first use), else
    the first font of ``CJK_FONTS`` installed on the system, else None."""
    try:
        from pylopdf_fonts_zh_cn import sans_path

        font_manager.fontManager.addfont(str(sans_path()))
        return font_manager.FontProperties(fname=str(sans_path())).get_name()
    except (ImportError, OSError, RuntimeError):  # not installed, or its file unreadable
        installed = {entry.name for entry in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in installed), None)


def font_for(character: str) -> Path | None:
    """The font file plots draw ``character`` with: the first font of their list (matplotlib's
    fallback order) whose character map has it, or None when none has it."""
    return next((path for path in _plot_fonts() if ord(character) in _characters(str(path))), None)


def _plot_fonts() -> list[Path]:
    """The files of the installed fonts of the plots' list, in matplotlib's fallback order."""
    with _figure_style():
        families = list(matplotlib.rcParams["font.sans-serif"])
    paths = []
    for family in families:
        try:
            paths.append(Path(font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)))
        except ValueError:  # not installed
            continue
    return paths


@functools.cache
def _characters(font_path: str) -> frozenset[int]:
    return frozenset(font_manager.get_font(font_path).get_charmap())


def _missing_glyphs(labels: Sequence[str]) -> str:
    """The characters of ``labels`` that no font of the plots' list has (empty when all are drawn)."""
    characters = sorted({character for label in labels for character in label if not character.isspace()})
    covered = [_characters(str(path)) for path in _plot_fonts()]
    return "".join(character for character in characters if not any(ord(character) in font for font in covered))


@contextlib.contextmanager
def _figure_style() -> Iterator[None]:
    """Fonts with CJK glyphs (when installed) ahead of the default ones, and quiet about fonts:
    no warning per missing glyph, no log line when a CJK font has no "normal" weight (WenQuanYi)."""
    font = cjk_font()
    fonts = ([font] if font else []) + matplotlib.rcParams["font.sans-serif"]
    font_log = logging.getLogger("matplotlib.font_manager")
    level = font_log.level
    font_log.setLevel(logging.ERROR)
    try:
        with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": fonts}), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            yield
    finally:
        font_log.setLevel(level)


def _figure_path(path: Path) -> Path:
    """``path`` as a Path, its folder created; ``ConfigError`` unless it ends in .png, .svg or .pdf."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise ConfigError(f"cannot write a figure to {path}: the file name must end in "
                          f"{', '.join(FIGURE_FORMATS[:-1])} or {FIGURE_FORMATS[-1]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def plot_attention(
    matrix: torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str], path: Path, title: str = "",
    unit: str = "piece",
) -> Path:
    """Write a heatmap of attention ``matrix`` (T, S), or a grid of them, one per head, for (H, T, S)
    (``attention_figure``) to ``path``, the whole ``title`` as the file's "Title" metadata. The
    format follows the suffix of ``path``: .png (``DPI`` dots per inch), .svg or .pdf; any other
    raises ``ConfigError``. Returns ``path``."""
    path = _figure_path(path)
    if missing := _missing_glyphs([*row_labels, *col_labels, title]):
        warnings.warn(f"no font here has {missing[:10]!r}{'...' if len(missing) > 10 else ''}: {path} draws them as boxes; "
                      "pip install pylopdf-fonts-zh-cn (Noto Sans SC), or install a CJK font", MissingFontWarning, stacklevel=2)
    with _figure_style():
        attention_figure(matrix, row_labels, col_labels, title, unit).savefig(path, metadata={"Title": title})
    return path


def attention_title(model: ModelConfig, layer: int | None = None, head: int | str | None = None) -> str:
    """What a heatmap of ``model``'s attention shows: the RNN's mechanism, or which decoder layer
    (default: the last) and heads (a number, "all", default: averaged) of a Transformer's cross-attention."""
    if model.arch == "rnn":
        return f"RNN + {model.attention} attention"
    return ("Transformer cross-attention" + (", last layer, " if layer is None else f", layer {layer}, ")
            + ("heads averaged" if head is None else "all heads" if head == "all" else f"head {head}"))


def plot_translation_attention(translation: Translation, path: Path, model: ModelConfig, level: str = "word",
                               layer: int | None = None, head: int | str | None = None) -> Path:
    """Write the heatmap of ``translation``'s attention between words or pieces (``level``) to ``path``
    (``plot_attention``), titled with what it shows (``attention_title``) and the sentence pair."""
    attention, row_labels, col_labels = alignment_labels(translation, level)
    return plot_attention(select_attention(attention, layer, head), row_labels, col_labels, path, unit=level,
                          title=f"{attention_title(model, layer, head)}\n{translation.source} -> {translation.text}")


def attention_figure(
    matrix: torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str], title: str = "", unit: str = "piece"
) -> Figure:
    """A heatmap of attention ``matrix`` (T, S), or a grid of them, one per head, for (H, T, S).

    Target words or pieces (``unit``; ``row_labels``, T) label the rows, source ones
    (``col_labels``, S) the columns; for words the axis labels say how pieces were merged. One
    colour bar on a fixed 0..1 scale, so that plots of different sentences, heads and models
    compare. ``title`` (e.g. the model and the sentence) heads the figure on one line, cut with
    "…" (``one_line_title``). The size is ``attention_figure_size``: the heatmaps cover at least
    ``HEATMAP_SHARE`` of it (one head). Draw it inside ``_figure_style()`` to have its CJK font.
    """
    grid = _labelled_grid(matrix, row_labels, col_labels)
    heads = grid.size(0)
    columns = min(heads, MAX_GRID_COLUMNS)
    merged = unit == "word"
    figure = Figure(figsize=attention_figure_size(row_labels, col_labels, heads), dpi=DPI, layout="constrained")
    figure.get_layout_engine().set(w_pad=0.02, h_pad=0.02)
    axes = figure.subplots(math.ceil(heads / columns), columns, squeeze=False).flatten()
    for ax in axes[heads:]:
        ax.set_axis_off()
    for index, (ax, weights) in enumerate(zip(axes, grid)):
        image = ax.imshow(weights.numpy(), cmap=COLORMAP, vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(col_labels)), col_labels, rotation=90)
        ax.set_yticks(range(len(row_labels)), row_labels)
        ax.set(xlabel=f"source {unit}s" + (" (pieces summed)" if merged else ""),
               ylabel=f"target {unit}s" + (" (pieces averaged)" if merged else ""),
               title=f"head {index}" if heads > 1 else "")
    figure.colorbar(image, ax=axes[:heads].tolist(), label="attention weight", fraction=0.05, pad=0.02)
    figure.suptitle(one_line_title(title, figure.get_figwidth()))
    return figure


def read_train_log(path: Path) -> list[dict]:
    """The events of a run's ``train_log.jsonl``, in order. ``path``: the run directory or the file.

    Raises ``DataError``, naming the file and the line, if the file is missing or unreadable, or
    a line is not a JSON object with an "event" (or a train/validation event lacks a number the
    learning curves need). Blank lines are skipped, and so is an incomplete last line (no
    newline yet), so the log of a run still training can be read.
    """
    path = Path(path)
    file = path / LOG_FILE if path.is_dir() else path
    try:
        lines = file.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise DataError(f"no training log at {file} (give a run directory or its {LOG_FILE})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read the training log {file}: {error}") from None
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines):  # a last line without its newline: a record still being written
                break
            raise DataError(f"{file}, line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(event, dict) or "event" not in event:
            raise DataError(f'{file}, line {number}: not a JSON object with an "event" field')
        missing = [name for name in CURVE_FIELDS.get(event["event"], ())
                   if not isinstance(event.get(name), (int, float))]
        if missing:
            raise DataError(f"{file}, line {number}: {event['event']} event without a number for {', '.join(missing)}")
        events.append(event)
    return events


def _latest_per_step(events: list[dict], kind: str) -> list[dict]:
    """The ``kind`` events in step order, one per step: a resumed run repeats the steps after its
    last checkpoint, and the later record of a step wins."""
    by_step = {event["step"]: event for event in events if event["event"] == kind}
    return [by_step[step] for step in sorted(by_step)]


def plot_learning_curves(run_dirs: Sequence[Path], path: Path, labels: Sequence[str] | None = None) -> Path:
    """Write the learning curves of one or more runs to ``path`` (.png, .svg or .pdf) and return it.

    A 2 x 3 grid: columns are training loss, dev loss and dev BLEU; the top row plots them
    against the step, the bottom row against training time (``elapsed``, wall-clock minutes,
    validation included). Runs are overlaid, one colour each, with a legend; ``labels``
    default to the run directories' names. Every logged point is drawn, and the x axes reach the
    last step (and minute) any run logged; a run with fewer than ``MIN_CURVE_POINTS`` points in a
    panel is drawn as dots and named in the panel as too short for a curve. ``run_dirs`` may also
    name ``train_log.jsonl`` files. Raises ``DataError`` for a missing or malformed log
    (``read_train_log``) and ``ConfigError`` for a bad suffix, no runs, or a number of labels
    other than of runs.
    """
    path = _figure_path(path)
    run_dirs = [Path(run_dir) for run_dir in run_dirs]
    if not run_dirs:
        raise ConfigError("no runs to plot: give at least one run directory")
    if labels is not None and len(labels) != len(run_dirs):
        raise ConfigError(f"{len(labels)} labels for {len(run_dirs)} runs: give one label per run")
    logs = [read_train_log(run_dir) for run_dir in run_dirs]
    if labels is None:
        labels = [(run_dir if run_dir.is_dir() else run_dir.parent).resolve().name for run_dir in run_dirs]
    with _figure_style():
        learning_curves_figure(logs, labels).savefig(path)
    return path


def learning_curves_figure(logs: Sequence[list[dict]], labels: Sequence[str]) -> Figure:
    """The figure of ``plot_learning_curves`` for the events of each run (``read_train_log``)."""
    last = {clock: max((event[clock] for events in logs for event in events if isinstance(event.get(clock), (int, float))),
                       default=0) / divisor for clock, divisor, _ in CLOCKS}
    figure = Figure(figsize=CURVES_FIGSIZE, dpi=CURVES_DPI, layout="constrained")
    axes = figure.subplots(len(CLOCKS), len(CURVES), squeeze=False)
    for column, (kind, field, title, ylabel) in enumerate(CURVES):
        for row, (clock, _, xlabel) in enumerate(CLOCKS):
            axes[row, column].set(title=title, xlabel=xlabel, ylabel=ylabel)
            axes[row, column].set_xlim(0, max(last[clock], 1e-9) * 1.02)
        short = []
        for run, events in enumerate(logs):
            points = _latest_per_step(events, kind)
            few = len(points) < MIN_CURVE_POINTS
            if few:
                short.append(f"{labels[run]}: {len(points)} point{'' if len(points) == 1 else 's'}")
            for row, (clock, divisor, _) in enumerate(CLOCKS):
                axes[row, column].plot([point[clock] / divisor for point in points], [point[field] for point in points],
                                       color=f"C{run}", marker="o" if kind == "validation" or few else None, markersize=3)
        for row in range(len(CLOCKS) if short else 0):
            axes[row, column].text(0.5, 0.5, "too short for a curve:\n" + "\n".join(short), ha="center", va="center",
                                   transform=axes[row, column].transAxes, color="0.4")
    handles = [Line2D([], [], color=f"C{run}", label=label) for run, label in enumerate(labels)]
    figure.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 5))
    return figure
