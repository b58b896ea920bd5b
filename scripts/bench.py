"""Benchmark of training and decoding speed on Multi30k en->de (not a test: it prints and writes JSON).

Measures, each part in its own process so that peak RSS belongs to that part alone:

- matmul peak: FLOP/s of a large fp32 and bf16 matrix multiply (the machine's ceiling), and on a
  CPU where MKL is slow (``mt.device.mkl_is_slow_here``) of the fp32 one in oneDNN, as mt decodes;
- training: source+target and target tokens/s of ``--presets`` (default transformer-small: d_model
  256, ff 1024, 4 heads, 3+3 layers; 8k joint vocabulary, 4096-token batches) over ``--steps``
  updates after ``--warmup``, fp32 and bf16; model FLOP/s (counted by torch's FlopCounterMode over
  the real tokens) and utilisation against the matmul peak of the same precision; with
  ``--compile``, each row again with ``train.compile`` (``mt.step``) right after it, with its
  padding and the seconds its first batch of each shape took (compiling);
- decoding ``test_2016_flickr`` with a checkpoint: sentences/s and target tokens/s (tokens produced,
  EOS included; the median of ``--rounds`` passes, every pass's seconds in the JSON) for greedy and
  beam 5 at fp32, bf16 and int8, with BLEU; model FLOPs per target
  token and FLOP/s (counted by FlopCounterMode on a second, untimed pass; not for int8, whose kernels
  it does not count); and the time from loading the checkpoint to the first translation;
- decoding options, fp32: greedy, beam 5, sampling (temperature 1, top-p 0.9), no-repeat-ngram 3
  with greedy and beam 5, and, with ``--ensemble CHECKPOINT``, the ensemble of both checkpoints
  (greedy and beam 5); BLEU, tokens/s and peak RSS, and tokens/s as a ratio to greedy.

On a CPU without bf16 units (no AVX512-BF16 or AMX: torch would emulate bf16, about 10x slower
than fp32) the bf16 rows are skipped, and the header says so. With ``--device cuda`` every part runs
on the GPU instead: fp32, bf16 and fp16 (autocast), no int8 (a CPU scheme), an 8192x8192 matmul for
the peak, and the peak GPU memory allocated beside the peak RSS.

    python scripts/bench.py --data ../shared/data --checkpoint checkpoints/m30k-small --json results/bench.json
    python scripts/bench.py --skip decode --compile --presets transformer-tiny,transformer-small --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    from mt.device import cpu_field

    return cpu_field("model name") or platform.processor() or "unknown"


def precisions(device: str) -> tuple[str, ...]:
    """On CUDA fp32, bf16 and fp16; on CPU fp32, and bf16 where the CPU has bf16 units."""
    from mt.device import cpu_supports_bf16

    if device.startswith("cuda"):
        return ("fp32", "bf16", "fp16")
    return ("fp32", "bf16") if cpu_supports_bf16() else ("fp32",)


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work, so that a host clock read after it counts that work."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def peak_gpu_mb(device: str) -> float | None:
    """Peak GPU memory allocated by torch in this process (MB), or None on CPU."""
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**20 if device.startswith("cuda") else None


def bench_matmul(args) -> dict:
    import torch

    from mt.device import DTYPES, mkl_is_slow_here
    from mt.packing import PackedLinear

    size, results = (8192 if args.device.startswith("cuda") else 2048), {}

    def gflops(product, repeats: int = 20) -> float:
        for _ in range(3):
            product()
        synchronize(args.device)
        start = time.perf_counter()
        for _ in range(repeats):
            product()
        synchronize(args.device)
        return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9

    for name in precisions(args.device):
        a, b = (torch.randn(size, size, dtype=DTYPES[name], device=args.device) for _ in range(2))
        results[f"matmul_{name}_gflops"] = gflops(lambda: a @ b)
    if args.device == "cpu" and mkl_is_slow_here():  # fp32 products in oneDNN, as mt decodes here (mt.packing)
        packed, x = PackedLinear(torch.nn.Linear(size, size, bias=False)), torch.randn(size, size)
        with torch.inference_mode():
            results["matmul_fp32_onednn_gflops"] = gflops(lambda: packed(x))
    return results


def bench_train(args) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mt.batching import TrainingBatches, Update
    from mt.config import build_config
    from mt.data import read_corpus
    from mt.device import resolve_precision, set_threads
    from mt.models import build_model
    from mt.step import SHAPE_BUCKETS
    from mt.store import TokenizedCorpus
    from mt.tokenizer import train_tokenizer
    from mt.train import Updater, peak_rss_mb

    threads = set_threads(args.threads)
    compiled = args.compiled == "yes"
    corpus = read_corpus(str(Path(args.data) / "multi30k" / "train"), "en", "de")
    tokenizer = train_tokenizer(corpus.sources, corpus.targets, "en", "de", vocab_size=8000)
    config = build_config(args.preset, None, {"train": {"precision": args.precision, "batch_tokens": 4096, "compile": compiled}})
    config.model.src_vocab_size = config.model.tgt_vocab_size = tokenizer.src_vocab_size
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build_model(config.model).to(device).train()
    dtype = resolve_precision(args.precision, device)
    updater = Updater(model, config.train, device, dtype)
    ids = TokenizedCorpus.from_lists(tokenizer.encode_src(corpus.sources), tokenizer.encode_tgt(corpus.targets))
    batches = TrainingBatches(ids, 4096, seed=1, shapes=SHAPE_BUCKETS if compiled else 0)
    plan = batches.plan(0)
    if compiled:  # first the first batch of every shape: compiling, timed apart from the measured steps
        firsts = {batches.shape(indices): number for number, indices in reversed(list(enumerate(plan)))}
        plan = [plan[number] for number in sorted(firsts.values())] + [indices for number, indices in enumerate(plan)
                                                                       if number not in firsts.values()]
        for indices in plan[:len(firsts)]:
            updater.step(Update.of(batches.batch(indices)))
        plan = plan[len(firsts):]
    iterator = (batches.batch(indices) for indices in plan)
    for _ in range(args.warmup):
        updater.step(Update.of(next(iterator)))
    with FlopCounterMode(display=False) as counter:
        sample = next(iterator)
        updater.step(Update.of(sample))
    flops_per_token = counter.get_total_flops() / (sample.n_src_tokens + sample.n_tgt_tokens)
    src_tokens = tgt_tokens = 0
    synchronize(args.device)
    start = time.perf_counter()
    for _ in range(args.steps):
        batch = next(iterator)
        updater.step(Update.of(batch))
        src_tokens += batch.n_src_tokens
        tgt_tokens += batch.n_tgt_tokens
    synchronize(args.device)
    seconds = time.perf_counter() - start
    # FLOPs are counted over real tokens only, so padding shows as lower utilisation, as it should
    return {"preset": args.preset, "precision": str(dtype).split(".")[-1], "compiled": compiled, "threads": threads,
            "steps": args.steps, "tokens_per_s": (src_tokens + tgt_tokens) / seconds, "tgt_tokens_per_s": tgt_tokens / seconds,
            "seconds_per_step": seconds / args.steps, "padding_fraction": batches.padding_fraction(),
            "compile_seconds": updater.compile_seconds, "shapes": len(batches.shapes),
            "model_gflops": flops_per_token * (src_tokens + tgt_tokens) / seconds / 1e9, "peak_rss_mb": peak_rss_mb(),
            "peak_gpu_mb": peak_gpu_mb(args.device)}


def bench_decode(args) -> dict:
    from mt.config import DecodeConfig
    from mt.data import read_corpus
    from mt.device import set_threads
    from mt.metrics import bleu
    from mt.train import peak_rss_mb
    from mt.translate import Translator

    started = time.perf_counter()
    checkpoints = [Path(args.checkpoint)] + ([Path(args.ensemble)] if args.ensemble else [])
    set_threads(args.threads)
    translator = Translator.from_checkpoint(checkpoints, device=args.device, precision=args.precision,
                                            quantize=args.quantize)
    first = next(translator.translate(["I love machine learning"]))
    first_seconds = time.perf_counter() - started
    corpus = read_corpus(str(Path(args.data) / "multi30k" / "test_2016_flickr"), "en", "de")
    decode = DecodeConfig(beam_size=args.beam_size, batch_tokens=args.batch_tokens or DecodeConfig.batch_tokens,
                          **json.loads(args.decode_options))
    rounds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        results = list(translator.translate(corpus.sources, decode))
        rounds.append(time.perf_counter() - start)
    seconds = statistics.median(rounds)
    produced = sum(len(r.tgt_pieces) + 1 for r in results)
    row = {"precision": args.precision, "quantize": args.quantize or "none", "beam_size": args.beam_size,
           "decode_options": json.loads(args.decode_options), "ensemble": args.ensemble,
           "sentences_per_s": len(results) / seconds, "tgt_tokens_per_s": produced / seconds, "seconds": seconds,
           "seconds_per_round": rounds,
           "bleu": bleu([r.text for r in results], corpus.targets).score, "load_to_first_translation_s": first_seconds,
           "first_translation": first.text, "peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": peak_gpu_mb(args.device)}
    if not args.quantize and args.count_flops == "yes":  # FlopCounterMode does not count the quantized int8 kernels
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:  # a second, untimed pass over the same sentences
            list(translator.translate(corpus.sources, decode))
        row["mflop_per_tgt_token"] = counter.get_total_flops() / produced / 1e6
        row["model_gflops"] = counter.get_total_flops() / seconds / 1e9
    return row


PARTS = {"matmul": bench_matmul, "train": bench_train, "decode": bench_decode}


def run_part(args, part: str, **options) -> dict:
    command = [sys.executable, __file__, "--part", part, "--data", args.data, "--device", args.device, "--threads", str(args.threads),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--rounds", str(args.rounds),
               "--batch-tokens", str(args.batch_tokens)]
    if args.checkpoint:
        command += ["--checkpoint", args.checkpoint]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode:
        sys.exit(f"bench.py --part {part} {options} failed (exit {finished.returncode}):\n{finished.stderr}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--checkpoint", default="", help="trained en->de checkpoint for the decoding part")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda[:N] to run every part on that GPU")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="decoding: passes over the test set; the median is reported")
    parser.add_argument("--batch-tokens", type=int, default=0, help="decoding: source tokens x beams per batch (0: mt's default)")
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: train, decode, options")
    parser.add_argument("--ensemble", default="", help="a second checkpoint (same tokenizer): ensemble rows of the options table")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true",
                        help="also train with train.compile (shape buckets, compiled step, fused Adam), alternating with the default")
    parser.add_argument("--presets", default="transformer-small", help="training: comma-separated model presets")
    parser.add_argument("--train-rounds", type=int, default=1, help="training: passes over the rows (old and new alternate)")
    parser.add_argument("--preset", default="transformer-small", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--compiled", default="no", help=argparse.SUPPRESS)
    parser.add_argument("--quantize", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--beam-size", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--decode-options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--count-flops", default="yes", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        from mt.device import tune_process

        tune_process(training=args.part == "train")  # measure under the settings `mt` runs with
        print(json.dumps(PARTS[args.part](args)))
        return

    import torch
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    skip = set(args.skip.split(","))
    on_gpu = args.device.startswith("cuda")
    names = precisions(args.device)
    results = {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "bf16_units": "bf16" in precisions("cpu"), "threads": args.threads or len(__import__("os").sched_getaffinity(0)),
               "torch": torch.__version__, "device": torch.cuda.get_device_name(args.device) if on_gpu else "cpu",
               **run_part(args, "matmul"), "train": [], "decode": []}
    console = Console(width=140)  # the tables are wide: keep their columns readable when piped to a file
    peaks = ", ".join(f"{name} {results[f'matmul_{name}_gflops']:,.0f} GFLOP/s" for name in names)
    if "matmul_fp32_onednn_gflops" in results:
        peaks += f" (fp32 in oneDNN, as mt decodes here: {results['matmul_fp32_onednn_gflops']:,.0f})"
    bf16_units = "yes" if results["bf16_units"] else "no: bf16 rows skipped (emulated, about 10x slower than fp32)"
    console.print(escape(f"{results['cpu']} ({results['cpu_capability']}; bf16 units: {bf16_units}), {results['threads']} threads, "
                         f"torch {results['torch']}" + (f"; GPU {results['device']}" if on_gpu else "") + f"; matmul peak {peaks}"))
    memory = {"peak RSS MB": "peak_rss_mb", **({"peak GPU MB": "peak_gpu_mb"} if on_gpu else {})}  # column: key

    if "train" not in skip:
        table = Table(title=f"training, 4096-token batches, {args.steps} steps after {args.warmup}"
                            + (" (compiled: after one batch of each shape, its compiling)" if args.compile else ""))
        for column in ("model", "precision", "src+tgt tok/s", "tgt tok/s", "s/step", "model GFLOP/s", "utilisation",
                       "padding", "compile s", *memory):
            table.add_column(column, justify="right")
        for _ in range(args.train_rounds):
            for preset in args.presets.split(","):
                for precision in names:
                    for compiled in ("no", "yes") if args.compile else ("no",):  # old and new alternate
                        row = run_part(args, "train", preset=preset, precision=precision, compiled=compiled)
                        row["utilisation"] = row["model_gflops"] / results[f"matmul_{precision}_gflops"]
                        results["train"].append(row)
                        table.add_row(preset, precision + (" + compile" if compiled == "yes" else ""), f"{row['tokens_per_s']:,.0f}",
                                      f"{row['tgt_tokens_per_s']:,.0f}", f"{row['seconds_per_step']:.2f}",
                                      f"{row['model_gflops']:.0f}", f"{row['utilisation']:.1%}", f"{row['padding_fraction']:.1%}",
                                      f"{row['compile_seconds']:.0f}" if compiled == "yes" else "-",
                                      *(f"{row[key]:,.0f}" for key in memory.values()))
        console.print(table)
    if "decode" not in skip and args.checkpoint:
        table = Table(title=f"decoding test_2016_flickr (1,000 sentences), median of {args.rounds} passes")
        for column in ("search", "weights", "sent/s", "tgt tok/s", "MFLOP/tok", "model GFLOP/s", "BLEU", "load->first s",
                       *memory):
            table.add_column(column, justify="right")
        for beam_size in (1, 5):
            for precision, quantize in [(precision, None) for precision in names] + ([] if on_gpu else [("fp32", "int8")]):
                options = {"precision": precision, "beam_size": beam_size, **({"quantize": quantize} if quantize else {})}
                row = run_part(args, "decode", **options)
                results["decode"].append(row)
                flops = (f"{row['mflop_per_tgt_token']:.1f}", f"{row['model_gflops']:.0f}") if "model_gflops" in row else ("-", "-")
                table.add_row("greedy" if beam_size == 1 else f"beam {beam_size}", quantize or precision,
                              f"{row['sentences_per_s']:.1f}", f"{row['tgt_tokens_per_s']:,.0f}", *flops, f"{row['bleu']:.2f}",
                              f"{row['load_to_first_translation_s']:.2f}", *(f"{row[key]:,.0f}" for key in memory.values()))
        console.print(table)
    if "options" not in skip and args.checkpoint:
        table = Table(title=f"decoding options, test_2016_flickr, fp32, median of {args.rounds} passes")
        for column in ("search", "sent/s", "tgt tok/s", "tok/s vs greedy", "BLEU", *memory):
            table.add_column(column, justify="right")
        rows = [("greedy", 1, {}, ""), ("beam 5", 5, {}, ""),
                ("sampling, temperature 1, top-p 0.9", 1, {"sampling": True, "temperature": 1.0, "top_p": 0.9}, ""),
                ("greedy, no-repeat-ngram 3", 1, {"no_repeat_ngram_size": 3}, ""),
                ("beam 5, no-repeat-ngram 3", 5, {"no_repeat_ngram_size": 3}, "")]
        if args.ensemble:
            rows += [("ensemble of 2, greedy", 1, {}, args.ensemble), ("ensemble of 2, beam 5", 5, {}, args.ensemble)]
        results["options"] = []
        for name, beam_size, decode_options, ensemble in rows:
            row = run_part(args, "decode", beam_size=beam_size, decode_options=json.dumps(decode_options), count_flops="no",
                           **({"ensemble": ensemble} if ensemble else {}))
            row["search"] = name
            results["options"].append(row)
            ratio = row["tgt_tokens_per_s"] / results["options"][0]["tgt_tokens_per_s"]
            table.add_row(name, f"{row['sentences_per_s']:.1f}", f"{row['tgt_tokens_per_s']:,.0f}", f"{ratio:.2f}",
                          f"{row['bleu']:.2f}", *(f"{row[key]:,.0f}" for key in memory.values()))
        console.print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
