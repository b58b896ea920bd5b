"""What ``mt``'s commands show on a terminal, drawn with rich on a ``Console`` the caller passes.

Nothing here prints on its own: each renderer draws on the console it is given (``cli.py``
passes its stderr console for progress and notes, a stdout one for results). Importing it is
light (no torch), as ``mt --help`` must be.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from mt.data import CONTROL_CHARACTERS
from mt.errors import ConfigError, MTError

# --help's width when it goes to no terminal (a pipe, a log file, CI) and COLUMNS is unset: rich's
# default there, 80, wrapped option descriptions to a few words and cut defaults with "…".
HELP_WIDTH = 120

if TYPE_CHECKING:
    from mt.config import ModelConfig
    from mt.evaluate import EvalReport
    from mt.translate import Translation


def shown(value: object) -> str:
    """User text (a sentence, a path, a message quoting them) as rich markup that prints it
    literally: ``[...]`` escaped, terminal control characters (ESC ...) as ``\\xNN``."""
    return escape(CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match.group()):02x}", str(value)))


def print_error(out: Console, error: MTError | OSError) -> None:
    """A library error, or the operating system's (a full disk, a file that cannot be opened), as one
    "error:" paragraph: its message, or the system's reason and the file."""
    message = str(error) if isinstance(error, MTError) else (
        f"{error.strerror or error}{f': {error.filename}' if error.filename else ''}")
    out.print(f"[bold red]error:[/] {shown(message)}", highlight=False, soft_wrap=True)


def print_usage_error(out: Console, error) -> None:
    """A usage error that click finds (an unknown option, a value of the wrong type) worded as the
    library's errors are: one "error:" line, then the usage, instead of typer's boxed "Error"."""
    if type(error).__name__ == "NoArgsIsHelpError":  # the help is shown instead
        return
    out.print(f"[bold red]error:[/] {shown(error.format_message())}", highlight=False, soft_wrap=True)
    if getattr(error, "ctx", None) is not None:
        out.print(f"{shown(error.ctx.get_usage())}  (more: {shown(error.ctx.command_path)} --help)", highlight=False,
                  soft_wrap=True)


def help_width(environ=os.environ, stdout=sys.stdout) -> Optional[int]:
    """The width typer draws --help at: typer's TERMINAL_WIDTH if set; else ``HELP_WIDTH`` when
    ``stdout`` is no terminal and COLUMNS is unset; else None (rich's: COLUMNS or the terminal's)."""
    if environ.get("TERMINAL_WIDTH"):
        return int(environ["TERMINAL_WIDTH"])
    return None if environ.get("COLUMNS") or stdout.isatty() else HELP_WIDTH


def clock(seconds: float) -> str:
    """Seconds as H:MM:SS, as rich's progress columns show time."""
    minutes, seconds = divmod(round(max(seconds, 0)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


class TrainingDisplay:
    """The ``callback`` of ``mt.train.train``, drawn on ``out``. On a terminal, a rich progress bar
    (step, epoch, loss, lr, tokens/s, ETA); anywhere else (a log file, CI, a notebook) no bar, whose
    redrawn line would come out cut, but a plain line at every logged step (``--log-every``). On
    both, one line per validation."""

    def __init__(self, out: Console):
        self.out = out
        self.progress = Progress(
            TextColumn("[bold]step {task.fields[step]}"), BarColumn(), TextColumn("ep {task.fields[epoch]:.2f}"),
            TextColumn("loss {task.fields[loss]}"), TextColumn("lr {task.fields[lr]:.2e}"),
            TextColumn("{task.fields[speed]:,.0f} tgt tok/s"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.out, transient=False, disable=not self.out.is_terminal,
        )
        self.task = None
        self.limits: dict[str, float] = {}
        self.updates_per_epoch = 1

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def _completed(self, event: dict) -> tuple[float, float]:
        if self.limits.get("max_steps"):
            return event.get("step", 0), self.limits["max_steps"]
        if self.limits.get("max_time"):
            return event.get("elapsed", 0.0), self.limits["max_time"]
        if self.limits.get("epochs"):
            return event.get("step", 0), self.limits["epochs"] * self.updates_per_epoch
        return event.get("step", 0), None

    def _plain_line(self, event: dict) -> str:
        """A logged step as one line of text: what the bar shows, with the step out of the total."""
        done, total = self._completed(event)
        elapsed = event["elapsed"]
        left = f"  ETA {clock(elapsed * (total - done) / done)}" if total and done else ""
        return (f"step {event['step']:,}{f'/{total:,.0f}' if total and self.limits.get('max_steps') else ''}  "
                f"ep {event['epoch']:.2f}  loss {event['loss']:.3f}  lr {event['lr']:.2e}  "
                f"{event['tgt_tokens_per_s']:,.0f} tgt tok/s  elapsed {clock(elapsed)}{left}")

    def _start(self, kind: str, event: dict) -> None:
        """The lines of a (re)started run: the model, the data and what was dropped or noted."""
        self.limits, self.updates_per_epoch = event["limits"], event["updates_per_epoch"]
        self.out.print(
            f"{kind}: {event['parameters']:,} parameters on {event['device']} ({event['precision']}, {event['threads']} threads); "
            f"{event['train_pairs']:,} training pairs ({event['dropped_long']} too long, {event['dropped_empty']} empty dropped), "
            f"{event['batches_per_epoch']} batches/epoch, padding {event['padding_fraction']:.1%}, "
            f"data ready in {event['prepare_seconds']:.1f}s", highlight=False)
        corpora = event["corpora"]
        for corpus in corpora if len(corpora) > 1 else []:
            self.out.print(f"  {shown(corpus['corpus'])} (weight {corpus['weight']:g}): {corpus['pairs']:,} pairs "
                           f"({corpus['dropped_long']} too long, {corpus['dropped_empty']} empty dropped)", highlight=False)
        notes = [f"skipped the header row {c['tsv_header']!r} of {c['corpus']}" for c in corpora if c["tsv_header"]]
        if event.get("dev_truncated"):
            notes.append(f"{event['dev_truncated']} dev pair(s) too long for the model were cut, as mt translate cuts its input")
        if event.get("removed_staging"):
            notes.append(f"removed {event['removed_staging']} unfinished checkpoint(s) left by an interrupted save")
        for note in notes:
            self.out.print(f"note: {shown(note)}", highlight=False)
        completed, total = self._completed(event)
        self.task = self.progress.add_task("train", total=total, completed=completed, step=event["step"], epoch=0.0,
                                           loss="–", lr=0.0, speed=0.0)

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind in ("start", "resume"):
            self._start(kind, event)
        elif kind in ("progress", "train", "validation", "end"):
            logged = ({"loss": f"{event['loss']:.3f}", "lr": event["lr"], "speed": event["tgt_tokens_per_s"]}
                      if kind in ("progress", "train") else {})
            self.progress.update(self.task, completed=self._completed(event)[0], step=event["step"], epoch=event["epoch"],
                                 **logged)
        if kind == "train" and self.progress.disable:
            self.out.print(self._plain_line(event), highlight=False, soft_wrap=True)
        if kind == "validation":
            self.out.print(
                f"step {event['step']}: dev loss {event['dev_loss']:.3f}  ppl {event['dev_ppl']:.2f}  "
                f"BLEU {event['dev_bleu']:.2f}  (best {event['best_dev_bleu']:.2f}, {event['validation_seconds']:.1f}s)",
                highlight=False)


@contextlib.contextmanager
def sentence_progress(total: Optional[int], out: Console) -> Iterator:
    """A progress bar on ``out`` (sentences done, sentences/s, ETA) for ``total`` sentences, shown
    only when ``out`` is a terminal and the total is known; yields ``advance(count)``, the
    ``progress`` callback of ``Translator.translate``."""
    if not out.is_terminal or not total:
        yield lambda count: None
        return
    with Progress(TextColumn("{task.completed:,}/{task.total:,} sentences"), BarColumn(),
                  TextColumn("{task.fields[rate]} sentences/s"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=out, transient=True) as progress:
        task = progress.add_task("translate", total=total, rate="–")
        started = time.monotonic()

        def advance(count: int) -> None:
            done = progress.tasks[0].completed + count
            progress.update(task, completed=done, rate=f"{done / max(time.monotonic() - started, 1e-9):,.1f}")

        yield advance


def announce_stop(out: Console, signal_name: str) -> None:
    """Say on ``out`` that a signal stops training after the current step (``mt.stopping.StopSignals``).
    A terminal that hung up cannot be told: the rest of the run's messages on ``out`` then go
    nowhere, and the run still saves."""
    try:
        out.print(f"[yellow]{signal_name}: finishing the current step and saving last/ (send again to kill)[/]")
    except OSError:
        out.file = open(os.devnull, "w")


def print_serving(out: Console, host: str, port: int, pairs: list[str], authenticated: bool) -> None:
    """Say where ``mt serve`` listens and which language ``pairs`` it serves, warning first when
    ``host`` opens the API to the network (and more so without an API key)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        out.print(f"[yellow]warning:[/] listening on {shown(host)}: the API is open to the network"
                  f"{'' if authenticated else ' and has no authentication (add --api-key)'}", highlight=False)
    out.print(f"serving {shown(', '.join(pairs))} on http://{shown(host)}:{port}/ (Ctrl-C stops)", highlight=False)


def attentions_table(attentions: dict) -> Table:
    """The RNN attention mechanisms (``mt.models.rnn.ATTENTIONS``) as a table: each ``--attention``
    name and its summary, which names its paper."""
    table = Table("--attention", "mechanism", box=None, header_style="bold")
    for name, mechanism in attentions.items():
        table.add_row(name, escape(mechanism.summary))
    return table


def print_training_end(out: Console, end: dict, run_dir: Path, interrupted_by: Optional[str] = None) -> None:
    """The last words of a training run (``end``, the event ``mt.train.train`` returns): where it was
    saved and how to resume it when a signal (``interrupted_by``) stopped it; else its steps, time and
    best dev BLEU, and how many batches a non-finite loss skipped."""
    if interrupted_by:
        out.print(f"stopped by {interrupted_by} at step {end['step']}; saved {shown(run_dir / 'last')}. "
                  f"Resume with: mt train --resume {shown(run_dir)}", highlight=False, soft_wrap=True)
        return
    if end["nonfinite_total"]:
        out.print(f"[yellow]warning:[/] {end['nonfinite_total']} batches had a non-finite loss and were skipped")
    budget = " (inside the --max-time budget)" if end["stopped_by"] == "max_time" else ""
    out.print(f"done: {end['step']} steps in {end['elapsed'] / 60:.1f} min, best dev BLEU {end['best_dev_bleu']:.2f}, "
              f"validation took {end['validation_share']:.1%} of the time{budget}; checkpoints in {shown(run_dir)}",
              highlight=False)


def print_translation_warnings(out: Console, number: int, translation: Translation) -> None:
    """Warn on ``out`` of what line ``number``'s translation could not honour: an input cut to the
    model's length, glossary terms missing from the translation."""
    if translation.truncated:
        out.print(f"[yellow]warning:[/] input truncated to its first pieces: {shown(translation.source[:60])}...",
                  highlight=False)
    for term in translation.missed_terms:
        out.print(f"[yellow]warning:[/] line {number}: the glossary's {shown(term.target)} for {shown(term.text)} is "
                  "not in the translation (length limit, or a character the model cannot write)", highlight=False)


class AttentionViews:
    """What ``mt translate`` shows of each translation's attention, between words or pieces
    (``level``), of one decoder ``layer`` (default: the last) and ``head`` (a number, or "all" for a
    grid in a plot; default: the heads averaged): a table on ``out`` (``show``), a heatmap a sentence
    (``plot``: FILE.png, then FILE-2.png, ...) and one HTML page of them all (``page``, written by
    ``write_page``), each file announced on ``notes``. ``ConfigError`` for an unknown ``level`` or
    ``head``, and for ``head`` "all" in the table (before anything is translated)."""

    def __init__(self, out: Console, notes: Console, model: ModelConfig, show: bool = False, plot: Optional[Path] = None,
                 page: Optional[Path] = None, level: str = "word", layer: Optional[int] = None, head: Optional[str] = None):
        from mt.alignment import LEVELS

        if level not in LEVELS:
            raise ConfigError(f"--attention-level must be {' or '.join(LEVELS)}, got {level!r}")
        self.out, self.notes, self.model, self.show, self.plot, self.page = out, notes, model, show, plot, page
        self.level, self.layer = level, layer
        self.head = int(head) if head is not None and head.lstrip("-").isdigit() else head
        if self.head not in (None, "all") and not isinstance(self.head, int):
            raise ConfigError(f"--head must be a head's number or 'all', got {head!r}")
        if show and self.head == "all":
            raise ConfigError("--head all draws a grid in --attention-plot; the terminal shows one head or the average")
        self.on_page: list[Translation] = []

    def add(self, number: int, translation: Translation) -> None:
        """Show the attention of line ``number``'s translation (none without attention)."""
        if translation.attention is None:
            return
        if self.show:
            self._print_table(translation)
        if self.plot is not None:
            from mt.plot import plot_translation_attention  # matplotlib: only for a plot

            path = self.plot if number == 1 else self.plot.with_name(f"{self.plot.stem}-{number}{self.plot.suffix}")
            written = plot_translation_attention(translation, path, self.model, self.level, self.layer, self.head)
            self.notes.print(f"attention plot -> {shown(written)}", highlight=False)
        if self.page is not None:
            self.on_page.append(translation)

    def _print_table(self, translation: Translation) -> None:
        from mt.alignment import alignment_labels, select_attention  # torch and matplotlib: only when asked for
        from mt.plot import render_attention_table

        attention, row_labels, col_labels = alignment_labels(translation, self.level)
        self.out.print(render_attention_table(select_attention(attention, self.layer, self.head), row_labels, col_labels,
                                              max_width=self.out.width, unit=self.level))

    def write_page(self, pair: str, inputs: list[Path]) -> None:
        """Write the HTML page of the translations added, for the language ``pair``, never over one of
        ``inputs`` (none without ``page``)."""
        if self.page is None:
            return
        from mt.files import atomic_output
        from mt.serve import attention_html

        with atomic_output(self.page, inputs) as handle:
            handle.write(attention_html(self.on_page, pair))
        self.notes.print(f"attention page -> {shown(self.page)}", highlight=False)


def print_evaluation(report: EvalReport, out: Console, notes: Console) -> None:
    """The scores of ``report`` on ``out``, one line each and never wrapped, so that a signature can
    be copied whole; its glossary's term use and the translation speed on ``notes``."""
    out.print(f"{shown(report.test)} ({report.sentences} sentences)", highlight=False, soft_wrap=True)
    width = max(len(score.name) for score in report.scores)
    for score in report.scores:
        out.print(f"{score.name:<{width}}  {score.score:6.2f}  {score.signature}", highlight=False, soft_wrap=True)
    if report.glossary is not None:
        use = report.glossary
        notes.print(f"glossary {shown(use.file)}: term use {use.terms_used} / {use.terms_found} "
                    f"({100 * use.terms_used / max(use.terms_found, 1):.1f}%), "
                    "the terms found in the sources whose target term is in the translation", highlight=False)
    if report.seconds:
        decode = report.decode
        notes.print(f"translated {report.sentences} sentences in {report.seconds:.1f}s ({report.sentences_per_s:.1f} "
                    f"sentences/s, {'sampling' if decode.sampling else f'beam {decode.beam_size}'})", highlight=False)
