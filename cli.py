"""The ``mt`` command: parse options, call the library, render results with rich.

Every ``MTError`` the library raises becomes a one-paragraph message and exit code 2.
"""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
import typer.rich_utils
from rich.console import Console

from mt.console import (AttentionViews, TrainingDisplay, announce_stop, attentions_table, help_width, print_error,
                        print_evaluation, print_serving, print_training_end, print_translation_warnings,
                        print_usage_error, sentence_progress, shown)
from mt.errors import ConfigError, MissingFontWarning, MTError, SlowPrecisionWarning

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Neural machine translation: tokenize, train, translate, eval.")
console = Console(stderr=True)
EXIT_BAD_INPUT = 2
typer.rich_utils.MAX_WIDTH = help_width()
typer.rich_utils.rich_format_error = functools.partial(print_usage_error, console)  # for every click.ClickException


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
                print_error(console, error)
                raise typer.Exit(EXIT_BAD_INPUT) from None
        return wrapper
    return decorate


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
    from mt.tokenizer import train_tokenizer

    corpus = read_corpus(train, src, tgt)
    tokenizer = train_tokenizer(corpus.sources, corpus.targets, src, tgt, vocab_size, model_type, joint=not separate)
    tokenizer.save(output)
    console.print(f"tokenizer: {tokenizer.src_vocab_size}/{tokenizer.tgt_vocab_size} pieces "
                  f"({'separate' if separate else 'joint'}, {shown(model_type)}) from {len(corpus)} pairs -> {shown(output)}")
    if encode:
        to_encode = read_corpus(encode, src, tgt)
        for path, sentences in tokenizer.write_encoded(to_encode, output, ids, corpus.files + to_encode.files):
            console.print(f"encoded {sentences} sentences -> {shown(path)}")


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
    terminology: Optional[Path] = typer.Option(None, help="Term dictionary (a glossary's TSV/CSV; a source term may have "
                                               "several targets) annotated in the training sources (Dinu et al. 2019), so "
                                               "that the model learns to place the terms of a --glossary (docs/glossary.md)."),
    terminology_rate: Optional[float] = typer.Option(None, help="Share of the terms found in a training pair (a target of "
                                                     "theirs in its target) that are annotated (default 0.5)."),
    terminology_substitute: Optional[float] = typer.Option(None, help="Share of the annotated terms whose target is swapped "
                                                           "for another of the term's, in the annotation and the target "
                                                           "(default 0.5)."),
):
    """Train a translation model; writes checkpoints and train_log.jsonl into the run directory.

    Several processes (DistributedDataParallel): torchrun --nproc_per_node=N $(which mt) train ...
    """
    from mt.config import parse_duration, sectioned
    from mt.distributed import is_main_process
    from mt.rundir import plan_run
    from mt.stopping import StopSignals
    from mt.train import LIMITS
    from mt.train import train as run_training

    overrides = sectioned(dict(
        arch=arch, rnn_type=rnn_type, attention=attention, hidden_size=hidden_size, embedding_dim=embedding_dim,
        local_window=local_window, positions=positions, train=train or None, dev=dev, src_lang=src, tgt_lang=tgt,
        tokenizer=str(tokenizer) if tokenizer else None, vocab_size=vocab_size, model_type=model_type,
        joint_vocab=False if separate_vocab else None, max_steps=max_steps,
        max_time=parse_duration(max_time) if max_time else None, epochs=epochs, batch_tokens=batch_tokens,
        accum_steps=accum_steps, learning_rate=learning_rate, warmup_steps=warmup_steps, cooldown_steps=cooldown_steps,
        validate_every=validate_every, log_every=log_every, precision=precision, compile=compile, device=device, seed=seed,
        threads=threads, init_from=str(init_from) if init_from else None, save_every=save_every,
        save_every_minutes=save_every_minutes, keep=keep, encoding_errors=encoding_errors,
        terminology=str(terminology) if terminology else None, terminology_rate=terminology_rate,
        terminology_substitute=terminology_substitute))
    plan = plan_run(overrides, preset, config, output, run_name, resume)
    with StopSignals(functools.partial(announce_stop, console)) as stop, TrainingDisplay(console) as display:
        end = run_training(plan.config, plan.run_dir, callback=display, resume=plan.resume, stop_requested=stop)
    if not is_main_process():  # torchrun: rank 0 reports
        return
    stopped_by = end["stopped_by"] or stop.received
    interrupted_by = stopped_by if stopped_by and stopped_by not in LIMITS else None
    print_training_end(console, end, plan.run_dir, interrupted_by)
    if interrupted_by:
        raise typer.Exit(StopSignals.EXIT_CODES.get(interrupted_by, 1))


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
                                                  "(with several sentences: FILE.png for the first, FILE-2.png, FILE-3.png, ... after it)."),
    layer: Optional[int] = typer.Option(None, help="Transformer decoder layer to show or align with (default: the last)."),
    head: Optional[str] = typer.Option(None, help="Attention head to show: a number, or 'all' (a grid in the plot); "
                                       "default: the heads averaged."),
    attention_html: Optional[Path] = typer.Option(None, help="Write the translations with their attention as one "
                                                  "self-contained HTML page (the view of mt serve)."),
    engine: str = typer.Option("mt", help="mt | ctranslate2 (--checkpoint is then a directory of mt export --format ctranslate2)."),
    glossary: Optional[Path] = GLOSSARY,
):
    """Translate sentences with a trained checkpoint."""
    from mt.alignment import pharaoh, word_alignment
    from mt.checkpoint import default_checkpoint
    from mt.data import count_lines, input_lines
    from mt.device import set_threads
    from mt.engines import load_translator
    from mt.files import text_output
    from mt.glossary import read_glossary

    if (text == ["-"] and input_file is None) or (not text and input_file == Path("-")):  # "-" is stdin, as for most tools
        text, input_file = [], None
    checkpoints = checkpoint or [default_checkpoint()]
    want_attention = show_attention or alignment or attention_plot is not None or attention_html is not None
    terms = read_glossary(glossary) if glossary else None
    translator = load_translator(checkpoints, engine, device, precision, quantize, set_threads(threads or 0), want_attention,
                                 src, tgt)
    views = AttentionViews(Console(), console, translator.config.model, show_attention, attention_plot, attention_html,
                           attention_level, layer, head)
    decode = translator.config.decode.with_overrides(
        batch_tokens=batch_size, beam_size=beam_size, length_penalty=length_penalty, max_length=max_length, n_best=n_best,
        sampling=sampling, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
        no_repeat_ngram_size=no_repeat_ngram_size)
    if alignment and decode.n_best > 1:
        raise ConfigError("--alignment aligns the best translation only: drop --n-best")
    with (text_output(output_file, [input_file] if input_file else [] if text else [Path("/dev/stdin")]) as handle,
          sentence_progress(count_lines(input_file) if input_file and console.is_terminal else None, console) as advance):
        lines, chunking = input_lines(text, input_file, encoding_errors)
        results = translator.translate(lines, decode, return_attention=want_attention, chunking=chunking, progress=advance,
                                       glossary=terms)
        for number, result in enumerate(results, start=1):
            print_translation_warnings(console, number, result)
            if decode.n_best > 1:
                handle.write("".join(f"{hyp}\t{score:.4f}\n" for hyp, score in result.n_best))
            elif alignment:
                links = pharaoh(word_alignment(result, layer)) if result.attention is not None else ""
                handle.write(f"{result.text} ||| {links}\n")
            else:
                handle.write(result.text + "\n")
            handle.flush()
            views.add(number, result)
    views.write_page(f"{translator.tokenizer.src_lang} → {translator.tokenizer.tgt_lang}", [input_file] if input_file else [])


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
    from mt.checkpoint import default_checkpoint
    from mt.device import set_threads
    from mt.engines import load_translator
    from mt.glossary import read_glossary
    from mt.serve import Limits, ModelThread, build_app, listen, run

    terms = read_glossary(glossary) if glossary else None
    model_thread = ModelThread()
    model_thread.call(set_threads, threads or 0)
    translators = [model_thread.call(load_translator, [path], device=device, precision=precision)
                   for path in checkpoint or [default_checkpoint()]]
    limits = Limits(max_request_bytes=max_request_bytes, max_characters=max_characters, max_sentences=max_sentences,
                    max_queue=max_queue, timeout=timeout, batch_wait=batch_wait / 1000, read_timeout=read_timeout)
    sock = listen(host, port)  # before saying "serving": a port another server holds is an error, not a start
    print_serving(console, host, port, [f"{t.tokenizer.src_lang}->{t.tokenizer.tgt_lang}" for t in translators], bool(api_key))
    run(build_app(translators, model_thread, limits, api_key, terms), sock, limits)


@app.command()
@reports_errors()
def attentions():
    """List the RNN attention mechanisms for mt train --attention, with their papers."""
    from mt.models.rnn import ATTENTIONS

    console.print(attentions_table(ATTENTIONS))
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

        written, kind, storage = export_ctranslate2(checkpoint, output, quantization), "CTranslate2, ", quantization
    else:
        if format != "mt":
            raise ConfigError(f"--format must be mt or ctranslate2, got {format!r}")
        if dtype not in DTYPES:
            raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        written = export_checkpoint(checkpoint, output, None if DTYPES[dtype] == torch.float32 else DTYPES[dtype])
        kind, storage = "", f"{dtype} weights"
    size = sum(f.stat().st_size for f in written.iterdir()) / 2**20
    console.print(f"exported {shown(checkpoint)} -> {shown(written)} ({kind}{size:.1f} MiB, {storage})", highlight=False)


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
    from mt.checkpoint import default_checkpoint
    from mt.device import set_threads
    from mt.engines import load_translator
    from mt.evaluate import evaluate as evaluate_test_set
    from mt.evaluate import read_test_set

    translator, decode = None, None
    checkpoints = checkpoint or [default_checkpoint()]
    if hyp is None or (checkpoint and not (src and tgt)):
        translator = load_translator(checkpoints, device=device, precision=precision, quantize=quantize,
                                     threads=set_threads(threads or 0), src=src, tgt=tgt)
    test_set = read_test_set(test, src, tgt, translator, checkpoints[0], encoding_errors)
    for note in test_set.notes:
        console.print(f"note: {shown(note)}", highlight=False, soft_wrap=True)
    if hyp is None:
        decode = translator.config.decode.with_overrides(
            batch_tokens=batch_size, beam_size=beam_size, length_penalty=length_penalty, sampling=sampling,
            temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, no_repeat_ngram_size=no_repeat_ngram_size)
    with sentence_progress(len(test_set) if hyp is None else None, console) as advance:
        report = evaluate_test_set(test_set, ", ".join(map(str, checkpoints)), translator, decode, hypotheses_file=hyp,
                                   glossary=glossary, tokenize=tokenize, lowercase=lowercase, tok_references=tok_references,
                                   encoding_errors=encoding_errors, outputs=(output_file, json_file), progress=advance)
    report.write(hypotheses_file=output_file)
    print_evaluation(report, Console(), console)
    report.write(json_file=json_file)


if __name__ == "__main__":
    app()
