"""mt's decoder against CTranslate2 on the very same model (not a test: it prints and writes JSON).

Exports the checkpoint with ``mt export --format ctranslate2`` (float32; CTranslate2 converts to
its compute types on load), then decodes the test set with each engine **in its own process**
(two OpenMP runtimes in one process slow each other down), text in -> text out, the median of
``--rounds`` passes after a warm-up pass. Rows: greedy and beam 5 for mt fp32 / int8 (dynamic) /
bf16 (where the CPU has bf16 units), on a CPU where MKL is slow (``mt.device.mkl_is_slow_here``)
mt fp32 also without its oneDNN-packed Linear layers ("fp32 MKL"), and CTranslate2 float32 /
int8 / bfloat16 (where CTranslate2 offers it on this CPU); columns sentences/s, target tokens/s
(pieces produced, EOS included), BLEU (sacrebleu, the test set's tokenizer), peak RSS, and how
many outputs equal mt fp32's with the same search.

    python scripts/bench_ct2.py --checkpoint checkpoints/m30k-small --test ../shared/data/multi30k/test_2016_flickr
    python scripts/bench_ct2.py --checkpoint checkpoints/default --test ../shared/data/tatoeba-en-zh/test.tsv
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_engine(args) -> dict:
    """One engine and setting in this process: outputs, speed, peak RSS."""
    from mt.config import DecodeConfig
    from mt.data import read_corpus
    from mt.device import set_threads, tune_process
    from mt.train import peak_rss_mb

    tune_process()
    set_threads(args.threads)  # mt's engine runs on torch's threads; CTranslate2 is given its own count
    if args.engine == "ctranslate2":
        from mt.ct2 import CT2Translator

        translator = CT2Translator(Path(args.exported), threads=args.threads, compute_type=args.compute_type)
    elif args.fp32_linear == "mkl":  # fp32 products in MKL even where it is slow: what packing is measured against
        import torch

        from mt.checkpoint import load_checkpoint
        from mt.translate import Translator

        model, tokenizer, config = load_checkpoint(Path(args.checkpoint), torch.device("cpu"))[:3]
        translator = Translator(model, tokenizer, config, torch.device("cpu"))
    else:
        from mt.translate import Translator

        translator = Translator.from_checkpoint(Path(args.checkpoint), precision=args.precision,
                                                quantize=args.quantize or None)
    corpus = read_corpus(args.test, translator.tokenizer.src_lang, translator.tokenizer.tgt_lang)
    decode = DecodeConfig(beam_size=args.beam_size, length_penalty=0.0 if args.beam_size > 1 else 1.0)
    list(translator.translate(corpus.sources[:100], decode))  # warm-up
    rounds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        results = list(translator.translate(corpus.sources, decode))
        rounds.append(time.perf_counter() - started)
    return {"outputs": [r.text for r in results], "tokens": sum(len(r.tgt_pieces) + 1 for r in results),
            "seconds": statistics.median(rounds), "seconds_per_round": rounds, "peak_rss_mb": peak_rss_mb(),
            "targets": corpus.targets, "tgt_lang": translator.tokenizer.tgt_lang}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a Transformer checkpoint or run directory")
    parser.add_argument("--test", required=True, help="test corpus (PREFIX or FILE.tsv)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--exported", help=argparse.SUPPRESS)
    parser.add_argument("--compute-type", default="default", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--quantize", default="", help=argparse.SUPPRESS)
    parser.add_argument("--beam-size", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--fp32-linear", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(run_engine(args), ensure_ascii=False))
        return

    from rich.console import Console
    from rich.table import Table

    from mt.ct2 import export_ctranslate2
    from mt.device import cpu_supports_bf16, mkl_is_slow_here
    from mt.metrics import bleu, default_tokenize

    bf16 = cpu_supports_bf16()
    settings = [("mt", "fp32", {"precision": "fp32"}), ("mt", "int8", {"quantize": "int8"}),
                ("ctranslate2", "float32", {"compute_type": "float32"}), ("ctranslate2", "int8", {"compute_type": "int8"})]
    if mkl_is_slow_here():  # mt packs fp32 Linear layers for oneDNN here (mt.packing); the row without it
        settings.insert(1, ("mt", "fp32 MKL", {"fp32_linear": "mkl"}))
    import ctranslate2

    supported = ctranslate2.get_supported_compute_types("cpu")
    if bf16:
        settings.append(("mt", "bf16", {"precision": "bf16"}))
    if "bfloat16" in supported:
        settings.append(("ctranslate2", "bfloat16", {"compute_type": "bfloat16"}))
    print(f"CTranslate2 {ctranslate2.__version__} compute types on this CPU: {', '.join(sorted(supported))}")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        exported = export_ctranslate2(Path(args.checkpoint), Path(scratch) / "ct2")
        for beam_size in (1, 5):
            reference = None
            for engine, name, options in settings:
                command = [sys.executable, __file__, "--checkpoint", args.checkpoint, "--test", args.test, "--threads",
                           str(args.threads), "--rounds", str(args.rounds), "--engine", engine, "--exported", str(exported),
                           "--beam-size", str(beam_size)]
                for key, value in options.items():
                    command += [f"--{key.replace('_', '-')}", value]
                finished = subprocess.run(command, capture_output=True, text=True)
                if finished.returncode:
                    sys.exit(f"{engine} {name} beam {beam_size} failed:\n{finished.stderr}")
                result = json.loads(finished.stdout.strip().splitlines()[-1])
                reference = reference or result["outputs"]
                rows.append({"search": "greedy" if beam_size == 1 else f"beam {beam_size}", "engine": engine, "type": name,
                             "sentences_per_s": len(result["outputs"]) / result["seconds"],
                             "tgt_tokens_per_s": result["tokens"] / result["seconds"],
                             "bleu": bleu(result["outputs"], result["targets"], tokenize=default_tokenize(result["tgt_lang"])).score,
                             "same_as_mt_fp32": sum(a == b for a, b in zip(result["outputs"], reference)),
                             "sentences": len(result["outputs"]), "peak_rss_mb": result["peak_rss_mb"],
                             "seconds_per_round": result["seconds_per_round"]})
    console = Console(width=140)
    table = Table(title=f"{args.checkpoint} on {args.test}: text in -> text out, median of {args.rounds} passes, "
                        f"each engine in its own process; beam search without length penalty")
    for column in ("search", "engine", "type", "sent/s", "tgt tok/s", "BLEU", "= mt fp32", "peak RSS MB"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["search"], row["engine"], row["type"], f"{row['sentences_per_s']:.1f}", f"{row['tgt_tokens_per_s']:,.0f}",
                      f"{row['bleu']:.2f}", f"{row['same_as_mt_fp32']}/{row['sentences']}", f"{row['peak_rss_mb']:,.0f}")
    console.print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, "test": args.test, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
