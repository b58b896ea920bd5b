"""The ``mt`` command: parse options, call the library, render results with rich.

Every ``MTError`` the library raises becomes a one-paragraph message and exit code 2.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import stat
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Optional

import typer
import typer.rich_utils
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mt.data import CONTROL_CHARACTERS
from mt.errors import ConfigError, DataError, MissingFontWarning, MTError, SlowPrecisionWarning

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Neural machine translation: tokenize, train, translate, eval.")
console = Console(stderr=True)
EXIT_BAD_INPUT = 2
DEFAULT_CHECKPOINT_ENV = "MT_CHECKPOINT"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"
# --help's width when it goes to no terminal (a pipe, a log file, CI) and COLUMNS is unset: rich's
# default there, 80, wrapped option descriptions to a few words and cut defaults with "…".
HELP_WIDTH = 120


def help_width(environ=os.environ, stdout=sys.stdout) -> Optional[int]:
    """The width typer draws --help at: typer's TERMINAL_WIDTH if set; else ``HELP_WIDTH`` when
    ``stdout`` is no terminal and COLUMNS is unset; else None (rich's: COLUMNS or the terminal's)."""
    if environ.get("TERMINAL_WIDTH"):
        return int(environ["TERMINAL_WIDTH"])
    return None if environ.get("COLUMNS") or stdout.isatty() else HELP_WIDTH


typer.rich_utils.MAX_WIDTH = help_width()


def show_usage_error(error) -> None:
    """A usage error that click finds (an unknown option, a value of the wrong type) worded as the
    library's errors are: one "error:" line, then the usage, instead of typer's boxed "Error"."""
    if type(error).__name__ == "NoArgsIsHelpError":  # the help is shown instead
        return
    console.print(f"[bold red]error:[/] {shown(error.format_message())}", highlight=False, soft_wrap=True)
    if getattr(error, "ctx", None) is not None:
        console.print(f"{shown(error.ctx.get_usage())}  (more: {shown(error.ctx.command_path)} --help)", highlight=False,
                      soft_wrap=True)


typer.rich_utils.rich_format_error = show_usage_error  # typer calls it for every click.ClickException


def shown(value: object) -> str:
    """User text (a sentence, a path, a message quoting them) as rich markup that prints it
    literally: ``[...]`` escaped, terminal control characters (ESC ...) as ``\\xNN``."""
    return escape(CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match.group()):02x}", str(value)))


def show_warning(message, category, filename, lineno, file=None, line=None):
    """The library's own warnings as one yellow line; any other as Python shows it."""
    if issubclass(category, (SlowPrecisionWarning, MissingFontWarning)):
        console.print(f"[yellow]warning:[/] {shown(message)}", highlight=False, soft_wrap=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def reports_errors(training: bool = False):
    """A command's decorator: the process tuned for ``training`` or decoding (``mt.device.tune_process``);
    library errors, and the operating system's (a full disk, a file that cannot be opened), as one
    paragraph and exit code 2 instead of a traceback; warnings as one line."""
    def decorate(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            try:
                from mt.device import tune_process  # imports torch, which can meet the disk's errors too

                tune_process(training=training)
                with warnings.catch_warnings():
                    warnings.showwarning = show_warning
                    return command(*args, **kwargs)
            except (MTError, OSError) as error:
                message = str(error) if isinstance(error, MTError) else (
                    f"{error.strerror or error}{f': {error.filename}' if error.filename else ''}")
                console.print(f"[bold red]error:[/] {shown(message)}", highlight=False, soft_wrap=True)
                raise typer.Exit(EXIT_BAD_INPUT) from None
        return wrapper
    return decorate


def parse_duration(text: str) -> float:
    """'90s', '45m', '1.5h' or plain seconds -> seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text or "")
    if not match:
        raise ConfigError(f"cannot read duration {text!r}: use e.g. 90s, 45m or 1.5h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def default_checkpoint() -> Path:
    """``$MT_CHECKPOINT`` if set, else the model shipped in ``checkpoints/default``."""
    path = Path(os.environ.get(DEFAULT_CHECKPOINT_ENV) or DEFAULT_CHECKPOINT)
    if not path.exists():
        from mt.errors import CheckpointError

        raise CheckpointError(f"no model at {path}: pass --checkpoint DIR (a checkpoint or run directory) "
                              f"or set {DEFAULT_CHECKPOINT_ENV}")
    return path


@app.command()
@reports_errors()
def tokenize(
    train: str = typer.Option(..., help="Training corpus: PREFIX (PREFIX.src + PREFIX.tgt), FILE.tsv, or a dataset."),
    src: str = typer.Option(..., help="Source language code, e.g. en."),
    tgt: str = typer.Option(..., help="Target language code, e.g. de."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for the tokenizer."),
    vocab_size: int = typer.Option(8000, help="Upper bound on the number of pieces."),
    model_type: str = typer.Option("unigram", help="SentencePiece model: unigram or bpe."),
    separate: bool = typer.Option(False, "--separate", help="One vocabulary per side instead of a joint one."),
    encode: Optional[str] = typer.Option(None, help="Also encode this corpus to OUTPUT/encoded.{src,tgt}."),
    ids: bool = typer.Option(False, "--ids", help="Write ids instead of pieces when encoding."),
):
    """Train a SentencePiece tokenizer on a parallel corpus (and optionally encode a corpus)."""
    from mt.data import read_corpus
    from mt.files import atomic_output
    from mt.tokenizer import train_tokenizer

    corpus = read_corpus(train, src, tgt)
    tokenizer = train_tokenizer(corpus.sources, corpus.targets, src, tgt, vocab_size, model_type, joint=not separate)
    tokenizer.save(output)
    console.print(f"tokenizer: {tokenizer.src_vocab_size}/{tokenizer.tgt_vocab_size} pieces "
                  f"({'separate' if separate else 'joint'}, {shown(model_type)}) from {len(corpus)} pairs -> {shown(output)}")
    if encode:
        to_encode = read_corpus(encode, src, tgt)
        for lang, sentences, processor in ((src, to_encode.sources, tokenizer.src), (tgt, to_encode.targets, tokenizer.tgt)):
            encoded = processor.encode(sentences, out_type=int if ids else str)
            path = output / f"encoded.{lang}"
            with atomic_output(path, corpus.files + to_encode.files) as handle:
                handle.write("".join(" ".join(map(str, row)) + "\n" for row in encoded))
            console.print(f"encoded {len(encoded)} sentences -> {shown(path)}")


class TrainingDisplay:
    """On a terminal, a rich progress bar (step, epoch, loss, lr, tokens/s, ETA); anywhere else (a
    log file, CI, a notebook) no bar, whose redrawn line would come out cut, but a plain line at
    every logged step (``--log-every``). On both, one line per validation."""

    def __init__(self, out: Optional[Console] = None):
        self.out = out or console
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
        left = f"  ETA {_clock(elapsed * (total - done) / done)}" if total and done else ""
        return (f"step {event['step']:,}{f'/{total:,.0f}' if total and self.limits.get('max_steps') else ''}  "
                f"ep {event['epoch']:.2f}  loss {event['loss']:.3f}  lr {event['lr']:.2e}  "
                f"{event['tgt_tokens_per_s']:,.0f} tgt tok/s  elapsed {_clock(elapsed)}{left}")

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind in ("start", "resume"):
            self.limits, self.updates_per_epoch = event["limits"], event["updates_per_epoch"]
            console.print(
                f"{kind}: {event['parameters']:,} parameters on {event['device']} ({event['precision']}, {event['threads']} threads); "
                f"{event['train_pairs']:,} training pairs ({event['dropped_long']} too long, {event['dropped_empty']} empty dropped), "
                f"{event['batches_per_epoch']} batches/epoch, padding {event['padding_fraction']:.1%}, "
                f"data ready in {event['prepare_seconds']:.1f}s", highlight=False)
            corpora = event["corpora"]
            for corpus in corpora if len(corpora) > 1 else []:
                console.print(f"  {shown(corpus['corpus'])} (weight {corpus['weight']:g}): {corpus['pairs']:,} pairs "
                              f"({corpus['dropped_long']} too long, {corpus['dropped_empty']} empty dropped)", highlight=False)
            notes = [f"skipped the header row {c['tsv_header']!r} of {c['corpus']}" for c in corpora if c["tsv_header"]]
            if event.get("dev_truncated"):
                notes.append(f"{event['dev_truncated']} dev pair(s) too long for the model were cut, as mt translate cuts its input")
            if event.get("removed_staging"):
                notes.append(f"removed {event['removed_staging']} unfinished checkpoint(s) left by an interrupted save")
            for note in notes:
                console.print(f"note: {shown(note)}", highlight=False)
            completed, total = self._completed(event)
            self.task = self.progress.add_task("train", total=total, completed=completed, step=event["step"], epoch=0.0,
                                               loss="–", lr=0.0, speed=0.0)
        elif kind in ("progress", "train", "validation", "end"):
            logged = ({"loss": f"{event['loss']:.3f}", "lr": event["lr"], "speed": event["tgt_tokens_per_s"]}
                      if kind in ("progress", "train") else {})
            self.progress.update(self.task, completed=self._completed(event)[0], step=event["step"], epoch=event["epoch"],
                                 **logged)
        if kind == "train" and self.progress.disable:
            self.out.print(self._plain_line(event), highlight=False, soft_wrap=True)
        if kind == "validation":
            self.progress.console.print(
                f"step {event['step']}: dev loss {event['dev_loss']:.3f}  ppl {event['dev_ppl']:.2f}  "
                f"BLEU {event['dev_bleu']:.2f}  (best {event['best_dev_bleu']:.2f}, {event['validation_seconds']:.1f}s)",
                highlight=False)


def _clock(seconds: float) -> str:
    """Seconds as H:MM:SS, as rich's progress columns show time."""
    minutes, seconds = divmod(round(max(seconds, 0)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


@contextlib.contextmanager
def sentence_progress(total: Optional[int], out: Optional[Console] = None):
    """A progress bar on stderr (sentences done, sentences/s, ETA) for ``total`` sentences, shown
    only when stderr is a terminal and the total is known; yields ``advance(count)``, the
    ``progress`` callback of ``Translator.translate``."""
    out = out or console
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


def _count_lines(path: Path) -> Optional[int]:
    """Lines of a regular file (for the progress bar), None for anything else."""
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


class StopSignals:
    """While active, SIGINT, SIGTERM and SIGHUP (a closed terminal, a dropped SSH session) ask
    training to stop after the current step (a second one kills)."""

    EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}

    def __init__(self):
        self.received: str | None = None
        self.previous = {}

    def _handle(self, number, frame):
        if self.received:
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        self.received = signal.Signals(number).name
        try:
            console.print(f"[yellow]{self.received}: finishing the current step and saving last/ (send again to kill)[/]")
        except OSError:  # the terminal hung up: the rest of the run's messages go nowhere, and it still saves
            console.file = open(os.devnull, "w")

    def __enter__(self):
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def __call__(self) -> str | None:
        return self.received


@app.command()
@reports_errors(training=True)
def train(
    train: Optional[list[str]] = typer.Option(None, "--train", help="Training corpus: PREFIX, FILE.tsv, or a dataset; "
                                              "repeat for several, SPEC@WEIGHT to draw a corpus' pairs WEIGHT times an epoch."),
    dev: Optional[str] = typer.Option(None, help="Dev corpus for validation (same forms as --train)."),
    src: Optional[str] = typer.Option(None, help="Source language code."),
    tgt: Optional[str] = typer.Option(None, help="Target language code."),
    preset: Optional[str] = typer.Option(None, help="Named preset from mt/presets (default transformer-small)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with data/model/train/decode sections."),
    output: Optional[Path] = typer.Option(None, "--output", help="Run directory (default checkpoints/<run-name>)."),
    run_name: Optional[str] = typer.Option(None, help="Name of the run directory under checkpoints/."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this directory from its last/ checkpoint."),
    init_from: Optional[Path] = typer.Option(None, help="Fine-tune: start from this checkpoint's weights, tokenizer and "
                                             "model (fresh optimizer and learning-rate schedule)."),
    tokenizer: Optional[Path] = typer.Option(None, help="Use this tokenizer directory instead of training one."),
    vocab_size: Optional[int] = typer.Option(None, help="SentencePiece vocabulary size."),
    model_type: Optional[str] = typer.Option(None, help="SentencePiece model: unigram or bpe."),
    separate_vocab: bool = typer.Option(False, "--separate-vocab", help="Separate source and target vocabularies."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many updates."),
    max_time: Optional[str] = typer.Option(None, help="Stop after this much time, e.g. 60m, the closing validation included."),
    epochs: Optional[int] = typer.Option(None, help="Stop after this many epochs."),
    batch_tokens: Optional[int] = typer.Option(None, help="Tokens per batch (padded, longer side)."),
    accum_steps: Optional[int] = typer.Option(None, help="Batches accumulated into one update (per process)."),
    learning_rate: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup", help="Linear warmup steps."),
    cooldown_steps: Optional[int] = typer.Option(
        None, "--cooldown", help="The last N of --max-steps updates decay the learning rate linearly to 0."),
    validate_every: Optional[int] = typer.Option(None, help="Validate (and checkpoint) every N steps."),
    log_every: Optional[int] = typer.Option(None, help="Log training loss every N steps."),
    arch: Optional[str] = typer.Option(None, help="transformer | rnn."),
    rnn_type: Optional[str] = typer.Option(None, help="RNN cell: gru | lstm."),
    attention: Optional[str] = typer.Option(None, help="RNN attention mechanism (mt attentions lists them; default bahdanau)."),
    positions: Optional[str] = typer.Option(None, help="Transformer positions: sinusoidal | learned."),
    hidden_size: Optional[int] = typer.Option(None, help="RNN hidden units (decoder; encoder: half per direction)."),
    embedding_dim: Optional[int] = typer.Option(None, help="RNN embedding size."),
    local_window: Optional[int] = typer.Option(None, help="Half-width D of luong-local and luong-local-m attention."),
    precision: Optional[str] = typer.Option(None, help="auto | fp32 | bf16 | fp16 (CUDA)."),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="pad batches to a few shapes and torch.compile the training step once per shape (off by default: it did not pay on a 2-core Xeon)."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: all cores available)."),
    save_every: Optional[int] = typer.Option(None, help="Also save last/ every N steps."),
    save_every_minutes: Optional[float] = typer.Option(None, help="Also save last/ every N minutes."),
    keep: Optional[int] = typer.Option(None, help="Step checkpoints to keep besides best/last."),
    encoding_errors: Optional[str] = typer.Option(None, help="strict (invalid UTF-8 is an error) or replace."),
):
    """Train a translation model; writes checkpoints and train_log.jsonl into the run directory.

    Several processes (DistributedDataParallel): torchrun --nproc_per_node=N $(which mt) train ...
    """
    from mt.distributed import is_main_process
    from mt.rundir import plan_run
    from mt.train import LIMITS
    from mt.train import train as run_training

    overrides: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
    for section, key, value in (
        ("model", "arch", arch), ("model", "rnn_type", rnn_type), ("model", "attention", attention),
        ("model", "hidden_size", hidden_size), ("model", "embedding_dim", embedding_dim), ("model", "local_window", local_window),
        ("model", "positions", positions),
        ("data", "train", train or None), ("data", "dev", dev), ("data", "src_lang", src), ("data", "tgt_lang", tgt),
        ("data", "tokenizer", str(tokenizer) if tokenizer else None), ("data", "vocab_size", vocab_size),
        ("data", "model_type", model_type), ("data", "joint_vocab", False if separate_vocab else None),
        ("train", "max_steps", max_steps), ("train", "max_time", parse_duration(max_time) if max_time else None),
        ("train", "epochs", epochs), ("train", "batch_tokens", batch_tokens), ("train", "accum_steps", accum_steps), ("train", "learning_rate", learning_rate),
        ("train", "warmup_steps", warmup_steps), ("train", "cooldown_steps", cooldown_steps),
        ("train", "validate_every", validate_every),
        ("train", "log_every", log_every), ("train", "precision", precision), ("train", "compile", compile), ("train", "device", device), ("train", "seed", seed),
        ("train", "threads", threads), ("train", "init_from", str(init_from) if init_from else None),
        ("train", "save_every", save_every), ("train", "save_every_minutes", save_every_minutes), ("train", "keep", keep),
        ("data", "encoding_errors", encoding_errors),
    ):
        if value is not None:
            overrides[section][key] = value
    plan = plan_run(overrides, preset, config, output, run_name, resume)
    run_dir = plan.run_dir
    with StopSignals() as stop, TrainingDisplay() as display:
        end = run_training(plan.config, run_dir, callback=display, resume=plan.resume, stop_requested=stop)
    if not is_main_process():  # torchrun: rank 0 reports
        return
    stopped_by = end["stopped_by"] or stop.received
    if stopped_by and stopped_by not in LIMITS:
        console.print(f"stopped by {stopped_by} at step {end['step']}; saved {shown(run_dir / 'last')}. "
                      f"Resume with: mt train --resume {shown(run_dir)}", highlight=False, soft_wrap=True)
        raise typer.Exit(StopSignals.EXIT_CODES.get(stopped_by, 1))
    if end["nonfinite_total"]:
        console.print(f"[yellow]warning:[/] {end['nonfinite_total']} batches had a non-finite loss and were skipped")
    budget = " (inside the --max-time budget)" if stopped_by == "max_time" else ""
    console.print(f"done: {end['step']} steps in {end['elapsed'] / 60:.1f} min, best dev BLEU {end['best_dev_bleu']:.2f}, "
                  f"validation took {end['validation_share']:.1%} of the time{budget}; checkpoints in {shown(run_dir)}",
                  highlight=False)


def _input_lines(text: list[str], input_file: Optional[Path], encoding_errors: str) -> tuple[Iterable[str], str]:
    """The sentences to translate and how to chunk them (``Translator.translate``): arguments, else
    the file (both in whole chunks), else stdin (streamed; see ``_stdin_chunking``)."""
    from mt.data import decode_lines, read_lines

    if text:
        return text, "whole"
    if input_file:
        return read_lines(input_file, encoding_errors), "whole"
    return decode_lines(sys.stdin.buffer, "stdin", encoding_errors), _stdin_chunking()


def _stdin_chunking() -> str:
    """A terminal's lines one at a time, a file redirected to stdin (``mt translate < file``) in
    whole chunks, anything else (a pipe) in growing chunks."""
    if sys.stdin.isatty():
        return "lines"
    try:
        is_file = stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError):  # io.UnsupportedOperation, a closed stream
        is_file = False
    return "whole" if is_file else "growing"


BATCH_SIZE_HELP = "Source tokens x beams per decoding batch (default: the checkpoint's, 6144 for new ones). Memory grows with it."
# The decoding options that mt translate and mt eval share (None: the checkpoint's setting).
CHECKPOINTS = typer.Option(None, "--checkpoint", help="Checkpoint or run directory (default: $MT_CHECKPOINT or "
                           "checkpoints/default); repeat for an ensemble (mean log-probabilities, one vocabulary).")
BEAM_SIZE = typer.Option(None, help="Beam size (1 = greedy; default: the checkpoint's, 5 for new runs).")
LENGTH_PENALTY = typer.Option(None, help="Length penalty alpha (Wu et al. 2016; default: the checkpoint's, 1.0 for new runs).")
SAMPLING = typer.Option(None, "--sampling/--no-sampling", help="Sample each token instead of searching (n samples with --n-best).")
TEMPERATURE = typer.Option(None, help="Sampling: divide the log-probabilities by this (default 1.0).")
TOP_K = typer.Option(None, help="Sampling: only from the K most probable tokens (default 0 = all).")
TOP_P = typer.Option(None, help="Sampling: only from the smallest set of tokens with probability >= P (nucleus; default 1.0).")
SEED = typer.Option(None, help="Sampling: random seed (default 1; the same seed gives the same samples).")
NO_REPEAT = typer.Option(None, help="Never produce an n-gram of this size twice in one output (default 0 = off).")
GLOSSARY = typer.Option(None, "--glossary", help="TSV or CSV file of source term, target term: every term found in a "
                        "sentence (whole words, any case) is in its translation (constrained beam search; at --beam-size 1 "
                        "a term is placed where it first fits, often first: use 4 or more).")


def _glossary(path: Optional[Path]):
    """The glossary of ``--glossary``, or None."""
    if path is None:
        return None
    from mt.glossary import read_glossary

    return read_glossary(path)


def _load_translator(checkpoints: list[Path], src: Optional[str], tgt: Optional[str], threads: Optional[int],
                     **options) -> Any:
    """Set torch's threads (``--threads``; all cores available by default), load ``checkpoints``
    (``mt.engines.load_translator`` with ``options``) and refuse another pair than ``src``->``tgt``."""
    from mt.device import set_threads
    from mt.engines import check_language_pair, load_translator

    translator = load_translator(checkpoints, threads=set_threads(threads or 0), **options)
    check_language_pair(translator, src, tgt, checkpoints[0])
    return translator


@app.command()
@reports_errors()
def translate(
    text: list[str] = typer.Argument(None, help="Sentences to translate (else -i FILE, else stdin; '-': stdin)."),
    input_file: Optional[Path] = typer.Option(None, "-i", "--input", help="File with one sentence per line ('-': stdin)."),
    output_file: Optional[Path] = typer.Option(None, "-o", "--output", help="Write translations here (default stdout)."),
    checkpoint: Optional[list[Path]] = CHECKPOINTS,
    beam_size: Optional[int] = BEAM_SIZE,
    length_penalty: Optional[float] = LENGTH_PENALTY,
    max_length: Optional[int] = typer.Option(None, help="Maximum output length in tokens."),
    n_best: Optional[int] = typer.Option(None, help="Output the N best hypotheses (tab-separated with scores)."),
    sampling: Optional[bool] = SAMPLING,
    temperature: Optional[float] = TEMPERATURE,
    top_k: Optional[int] = TOP_K,
    top_p: Optional[float] = TOP_P,
    seed: Optional[int] = SEED,
    no_repeat_ngram_size: Optional[int] = NO_REPEAT,
    batch_size: Optional[int] = typer.Option(None, help=BATCH_SIZE_HELP),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    precision: str = typer.Option("fp32", help="fp32 | bf16 | auto."),
    quantize: Optional[str] = typer.Option(None, help="int8: dynamic int8 Linear layers (CPU)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: all cores available)."),
    src: Optional[str] = typer.Option(None, help="Expected source language (checked against the checkpoint)."),
    tgt: Optional[str] = typer.Option(None, help="Expected target language (checked against the checkpoint)."),
    encoding_errors: str = typer.Option("strict", help="strict (invalid UTF-8 in -i FILE is an error) or replace."),
    show_attention: bool = typer.Option(False, "--show-attention", help="Print the attention matrix under each translation."),
    attention_level: str = typer.Option("word", help="Attention between words (a source word's pieces summed, a target "
                                        "word's averaged) or between SentencePiece pieces: word | piece."),
    alignment: bool = typer.Option(False, "--alignment", help="Append each translation's word alignment read off the "
                                   "attention, as Marian does: TRANSLATION ||| 0-0 1-1 ... (source-target word indices)."),
    attention_plot: Optional[Path] = typer.Option(None, help="Write the attention heatmap to FILE.png/.svg/.pdf "
                                                  "(with several sentences: FILE-1.png, FILE-2.png, ...)."),
    layer: Optional[int] = typer.Option(None, help="Transformer decoder layer to show or align with (default: the last)."),
    head: Optional[str] = typer.Option(None, help="Attention head to show: a number, or 'all' (a grid in the plot); "
                                       "default: the heads averaged."),
    attention_html: Optional[Path] = typer.Option(None, help="Write the translations with their attention as one "
                                                  "self-contained HTML page (the view of mt serve)."),
    engine: str = typer.Option("mt", help="mt | ctranslate2 (--checkpoint is then a directory of mt export --format ctranslate2)."),
    glossary: Optional[Path] = GLOSSARY,
):
    """Translate sentences with a trained checkpoint."""
    from mt.alignment import LEVELS, pharaoh, word_alignment

    if (text == ["-"] and input_file is None) or (not text and input_file == Path("-")):  # "-" is stdin, as for most tools
        text, input_file = [], None
    checkpoints = checkpoint or [default_checkpoint()]
    want_attention = show_attention or alignment or attention_plot is not None or attention_html is not None
    terms = _glossary(glossary)
    translator = _load_translator(checkpoints, src, tgt, engine=engine, device=device, precision=precision,
                                  quantize=quantize, threads=threads, attention=want_attention)
    if attention_level not in LEVELS:
        raise ConfigError(f"--attention-level must be {' or '.join(LEVELS)}, got {attention_level!r}")
    decode = translator.config.decode.with_overrides(
        batch_tokens=batch_size, beam_size=beam_size, length_penalty=length_penalty, max_length=max_length, n_best=n_best,
        sampling=sampling, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
        no_repeat_ngram_size=no_repeat_ngram_size)
    if alignment and decode.n_best > 1:
        raise ConfigError("--alignment aligns the best translation only: drop --n-best")
    with_attention = []
    head_choice = int(head) if head is not None and head.lstrip("-").isdigit() else head
    with (_output(output_file, [input_file] if input_file else [] if text else [Path("/dev/stdin")]) as handle,
          sentence_progress(_count_lines(input_file) if input_file and console.is_terminal else None) as advance):
        lines, chunking = _input_lines(text, input_file, encoding_errors)
        results = translator.translate(lines, decode, return_attention=want_attention, chunking=chunking, progress=advance,
                                       glossary=terms)
        for number, result in enumerate(results, start=1):
            if result.truncated:
                console.print(f"[yellow]warning:[/] input truncated to its first pieces: {shown(result.source[:60])}...",
                              highlight=False)
            for term in result.missed_terms:
                console.print(f"[yellow]warning:[/] line {number}: the glossary's {shown(term.target)} for "
                              f"{shown(term.text)} is not in the translation (length limit, or a character the model "
                              "cannot write)", highlight=False)
            if decode.n_best > 1:
                handle.write("".join(f"{hyp}\t{score:.4f}\n" for hyp, score in result.n_best))
            elif alignment:
                links = pharaoh(word_alignment(result, layer)) if result.attention is not None else ""
                handle.write(f"{result.text} ||| {links}\n")
            else:
                handle.write(result.text + "\n")
            handle.flush()
            if (show_attention or attention_plot is not None) and result.attention is not None:
                _show_attention(translator, result, number, show_attention, attention_plot, layer, head_choice,
                                attention_level)
            if attention_html is not None and result.attention is not None:
                with_attention.append(result)
    if attention_html is not None:
        from mt.files import atomic_output
        from mt.serve import attention_html as html_page

        with atomic_output(attention_html, [input_file] if input_file else []) as page:
            page.write(html_page(with_attention, f"{translator.tokenizer.src_lang} → {translator.tokenizer.tgt_lang}"))
        console.print(f"attention page -> {shown(attention_html)}", highlight=False)


def _output(path: Optional[Path], inputs: list[Path]):
    """Where translations go: ``path`` written atomically and never over one of ``inputs``
    (``mt.files.atomic_output``), else stdout."""
    from mt.files import atomic_output

    return atomic_output(path, inputs) if path else contextlib.nullcontext(sys.stdout)


def _show_attention(translator, result, number: int, show: bool, plot_path: Optional[Path], layer, head, level: str) -> None:
    """Print the attention matrix and/or write its heatmap for one translation, between words or pieces (``level``)."""
    from mt.alignment import alignment_labels, select_attention
    from mt.plot import plot_attention, render_attention_table

    attention, row_labels, col_labels = alignment_labels(result, level)
    if show:
        if head == "all":
            raise ConfigError("--head all draws a grid in --attention-plot; the terminal shows one head or the average")
        out = Console()
        out.print(render_attention_table(select_attention(attention, layer, head), row_labels, col_labels, max_width=out.width,
                                         unit=level))
    if plot_path is not None:
        model = translator.config.model
        kind = f"RNN + {model.attention} attention" if model.arch == "rnn" else "Transformer cross-attention"
        which = "" if model.arch == "rnn" else (
            (", last layer, " if layer is None else f", layer {layer}, ")
            + ("heads averaged" if head is None else "all heads" if head == "all" else f"head {head}"))
        path = plot_path if number == 1 else plot_path.with_name(f"{plot_path.stem}-{number}{plot_path.suffix}")
        written = plot_attention(select_attention(attention, layer, head), row_labels, col_labels, path,
                                 title=f"{kind}{which}\n{result.source} -> {result.text}", unit=level)
        console.print(f"attention plot -> {shown(written)}", highlight=False)


@app.command()
@reports_errors()
def serve(
    checkpoint: Optional[list[Path]] = typer.Option(None, help="Checkpoint or run directory to serve; repeat for several "
                                                    "language pairs (default: $MT_CHECKPOINT or checkpoints/default)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 opens the API to the network."),
    port: int = typer.Option(8080, help="TCP port."),
    api_key: Optional[str] = typer.Option(None, help="Require this key with every request: its api_key field or an "
                                          "'Authorization: Bearer KEY' header (the page has a field for it)."),
    max_request_bytes: int = typer.Option(1 << 20, help="Largest request body, bytes (413 above)."),
    max_sentences: int = typer.Option(512, help="Most texts in one request (413 above)."),
    max_characters: int = typer.Option(50_000, help="Most characters in one request (413 above)."),
    max_queue: int = typer.Option(256, help="Most requests waiting (503 above)."),
    timeout: float = typer.Option(60.0, help="Seconds a request may wait for its translation (503 after)."),
    batch_wait: float = typer.Option(20.0, help="Most milliseconds a request waits for others to be translated with it."),
    read_timeout: float = typer.Option(30.0, help="Seconds a client has to send a whole request (headers and body); "
                                       "the connection is closed after."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    precision: str = typer.Option("fp32", help="fp32 | bf16 | auto."),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: all cores available)."),
    glossary: Optional[Path] = typer.Option(None, "--glossary", help="TSV or CSV file of source term, target term, "
                                            "applied to every request (a request's own glossary adds to it)."),
):
    """Serve translation over HTTP until Ctrl-C: LibreTranslate's API, mt's own with attention, and a page at /."""
    from mt.device import set_threads
    from mt.serve import Limits, ModelThread, build_app, listen, run
    from mt.translate import Translator

    terms = _glossary(glossary)
    model_thread = ModelThread()
    model_thread.call(set_threads, threads or 0)
    translators = [model_thread.call(Translator.from_checkpoint, path, device=device, precision=precision)
                   for path in checkpoint or [default_checkpoint()]]
    limits = Limits(max_request_bytes=max_request_bytes, max_characters=max_characters, max_sentences=max_sentences,
                    max_queue=max_queue, timeout=timeout, batch_wait=batch_wait / 1000, read_timeout=read_timeout)
    sock = listen(host, port)  # before saying "serving": a port another server holds is an error, not a start
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning:[/] listening on {shown(host)}: the API is open to the network"
                      f"{'' if api_key else ' and has no authentication (add --api-key)'}", highlight=False)
    pairs = ", ".join(f"{t.tokenizer.src_lang}->{t.tokenizer.tgt_lang}" for t in translators)
    console.print(f"serving {shown(pairs)} on http://{shown(host)}:{port}/ (Ctrl-C stops)", highlight=False)
    run(build_app(translators, model_thread, limits, api_key, terms), sock, limits)


@app.command()
@reports_errors()
def attentions():
    """List the RNN attention mechanisms for mt train --attention, with their papers."""
    from rich.table import Table

    from mt.models.rnn import ATTENTIONS

    table = Table("--attention", "mechanism", box=None, header_style="bold")
    for name, mechanism in ATTENTIONS.items():
        table.add_row(name, escape(mechanism.summary))
    console.print(table)
    console.print("Transformer: multi-head scaled dot-product attention; --positions sinusoidal | learned.", highlight=False)


@app.command()
@reports_errors()
def plot(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories (each with a train_log.jsonl)."),
    output: Path = typer.Option(Path("learning_curves.png"), "-o", "--output", help="PNG to write."),
    labels: Optional[list[str]] = typer.Option(None, "--label", help="Legend label per run (repeat; default: directory names)."),
):
    """Learning curves: training loss, dev loss and dev BLEU against step and wall-clock time, runs overlaid."""
    from mt.plot import plot_learning_curves

    written = plot_learning_curves(run_dirs, output, labels or None)
    console.print(f"learning curves of {len(run_dirs)} run(s) -> {shown(written)}", highlight=False)


@app.command()
@reports_errors()
def export(
    checkpoint: Path = typer.Argument(..., help="Checkpoint or run directory (its best)."),
    output: Path = typer.Argument(..., help="Directory for the exported checkpoint."),
    dtype: str = typer.Option("fp32", help="Weight storage: fp32 | bf16 | fp16 (bf16/fp16 halve the size)."),
    format: str = typer.Option("mt", "--format", help="mt (a checkpoint) | ctranslate2 (a CTranslate2 model directory; "
                               "Transformers only; pip install 'mt[ct2]')."),
    quantization: str = typer.Option("float32", help="ctranslate2: float32 | int8 | int8_float32 | int8_bfloat16 | bfloat16."),
):
    """Write an inference-only copy of a checkpoint (no optimizer state), optionally with 16-bit weights,
    or a CTranslate2 model of it (mt translate --engine ctranslate2 runs it)."""
    import torch

    from mt.checkpoint import export_checkpoint
    from mt.device import DTYPES

    if format == "ctranslate2":
        from mt.ct2 import export_ctranslate2

        written = export_ctranslate2(checkpoint, output, quantization)
        size = sum(f.stat().st_size for f in written.iterdir()) / 2**20
        console.print(f"exported {shown(checkpoint)} -> {shown(written)} (CTranslate2, {size:.1f} MiB, {quantization})",
                      highlight=False)
        return
    if format != "mt":
        raise ConfigError(f"--format must be mt or ctranslate2, got {format!r}")

    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    written = export_checkpoint(checkpoint, output, None if DTYPES[dtype] == torch.float32 else DTYPES[dtype])
    size = sum(f.stat().st_size for f in written.iterdir()) / 2**20
    console.print(f"exported {shown(checkpoint)} -> {shown(written)} ({size:.1f} MiB, {dtype} weights)", highlight=False)


@app.command()
@reports_errors()
def average(
    sources: list[Path] = typer.Argument(..., help="Checkpoints, or run directories (their --last newest step checkpoints)."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for the averaged checkpoint."),
    last: int = typer.Option(5, help="Step checkpoints taken from each run directory."),
):
    """Average the weights of several checkpoints of one run (e.g. its last 5 or 10) into one."""
    from mt.average import average_checkpoints, expand_sources

    paths = expand_sources(sources, last)
    written = average_checkpoints(paths, output)
    console.print(f"averaged {len(paths)} checkpoints ({', '.join(shown(p.name) for p in paths)}) -> {shown(written)}",
                  highlight=False)


@app.command("eval")
@reports_errors()
def evaluate(
    test: str = typer.Option(..., help="Test corpus: PREFIX, FILE.tsv, or a dataset."),
    src: Optional[str] = typer.Option(None, help="Source language (default: the checkpoint's)."),
    tgt: Optional[str] = typer.Option(None, help="Target language (default: the checkpoint's)."),
    checkpoint: Optional[list[Path]] = CHECKPOINTS,
    hyp: Optional[Path] = typer.Option(None, help="Score this hypothesis file instead of translating."),
    output_file: Optional[Path] = typer.Option(None, "-o", "--output", help="Also write the translations here."),
    beam_size: Optional[int] = BEAM_SIZE,
    length_penalty: Optional[float] = LENGTH_PENALTY,
    sampling: Optional[bool] = SAMPLING,
    temperature: Optional[float] = TEMPERATURE,
    top_k: Optional[int] = TOP_K,
    top_p: Optional[float] = TOP_P,
    seed: Optional[int] = SEED,
    no_repeat_ngram_size: Optional[int] = NO_REPEAT,
    batch_size: Optional[int] = typer.Option(None, help=BATCH_SIZE_HELP),
    tokenize: Optional[str] = typer.Option(None, help="sacrebleu tokenizer (default zh for Chinese, ja-mecab for Japanese, else 13a)."),
    lowercase: bool = typer.Option(False, "--lowercase", help="Case-insensitive BLEU/chrF/TER."),
    tok_references: Optional[Path] = typer.Option(None, help="Also report lc+tok BLEU (as most Multi30k papers) against "
                                                   "these lowercased, Moses-tokenized references, e.g. multi30k/tok/*.lc.norm.tok.de."),
    encoding_errors: str = typer.Option("strict", help="strict (invalid UTF-8 is an error) or replace."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    precision: str = typer.Option("fp32", help="fp32 | bf16 | auto."),
    quantize: Optional[str] = typer.Option(None, help="int8: dynamic int8 Linear layers (CPU)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: all cores available)."),
    json_file: Optional[Path] = typer.Option(None, "--json", help="Also write the scores, signatures and speed here as JSON."),
    glossary: Optional[Path] = GLOSSARY,
):
    """Translate a test set and score it with sacrebleu (BLEU, chrF, TER with signatures)."""
    import json

    from mt.evaluate import evaluate as evaluate_test_set
    from mt.evaluate import read_test_set
    from mt.files import atomic_output

    translator, decode = None, None
    checkpoints = checkpoint or [default_checkpoint()]
    if hyp is None or (checkpoint and not (src and tgt)):
        translator = _load_translator(checkpoints, src, tgt, device=device, precision=precision, quantize=quantize,
                                      threads=threads)
    test_set = read_test_set(test, src, tgt, translator, checkpoints[0], encoding_errors)
    for note in test_set.notes:
        console.print(f"note: {shown(note)}", highlight=False, soft_wrap=True)
    if hyp is None:
        decode = translator.config.decode.with_overrides(
            batch_tokens=batch_size, beam_size=beam_size, length_penalty=length_penalty, sampling=sampling,
            temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, no_repeat_ngram_size=no_repeat_ngram_size)
    with sentence_progress(len(test_set) if hyp is None else None) as advance:
        report = evaluate_test_set(test_set, ", ".join(map(str, checkpoints)), translator, decode, hypotheses_file=hyp,
                                   glossary=glossary, tokenize=tokenize, lowercase=lowercase, tok_references=tok_references,
                                   encoding_errors=encoding_errors, outputs=(output_file, json_file), progress=advance)
    if output_file:
        with atomic_output(output_file, report.inputs) as handle:
            handle.write("".join(h + "\n" for h in report.hypotheses))
    out = Console()
    out.print(f"{shown(report.test)} ({report.sentences} sentences)", highlight=False, soft_wrap=True)
    width = max(len(score.name) for score in report.scores)
    for score in report.scores:  # one line each, never wrapped, so that a signature can be copied whole
        out.print(f"{score.name:<{width}}  {score.score:6.2f}  {score.signature}", highlight=False, soft_wrap=True)
    if report.glossary is not None:
        use = report.glossary
        console.print(f"glossary {shown(glossary)}: term use {use.terms_used} / {use.terms_found} "
                      f"({100 * use.terms_used / max(use.terms_found, 1):.1f}%), "
                      "the terms found in the sources whose target term is in the translation", highlight=False)
    if report.seconds:
        console.print(f"translated {report.sentences} sentences in {report.seconds:.1f}s ({report.sentences_per_s:.1f} "
                      f"sentences/s, {'sampling' if decode.sampling else f'beam {decode.beam_size}'})", highlight=False)
    if json_file:
        with atomic_output(json_file, report.inputs) as handle:
            handle.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    app()
