"""Memory of a large corpus (not a test: it prints and writes JSON).

Builds a 1,000,000-pair corpus by repeating Multi30k's train split (in a temporary directory,
deleted afterwards), then runs ``mt train`` for one epoch on it and on the 29,000-pair original,
each in its own process with its own empty cache, and reports:

- peak RSS of preparing (tokenizer + tokenized Arrow corpus) and one update: ``--max-steps 1``;
- peak RSS of preparing and training one epoch: ``--epochs 1``;
- the time to re-open the already tokenized corpus (hash the files, load the cached tokenizer,
  memory-map the Arrow file) in a fresh process.

The model is deliberately small (d_model 64, one layer each side, 2k vocabulary) so that an epoch
over a million pairs takes minutes on a CPU: the data path, not the model, is being measured.

    python scripts/bench_corpus.py --data ../shared/data --pairs 1000000 --json results/bench_corpus.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mt.plot import read_train_log

ROOT = Path(__file__).resolve().parents[1]
MODEL = {"d_model": 64, "ff_dim": 256, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "dropout": 0.1}


def repeat_corpus(source: Path, target: Path, pairs: int) -> None:
    """Write the first ``pairs`` pairs of the corpus ``source`` repeated over and over to ``target``."""
    for lang in ("en", "de"):
        lines = Path(f"{source}.{lang}").read_text(encoding="utf-8").splitlines(keepends=True)
        with open(f"{target}.{lang}", "w", encoding="utf-8") as handle:
            handle.writelines(itertools.islice(itertools.cycle(lines), pairs))


def run_train(corpus: Path, dev: Path, work: Path, limit: list[str], threads: int) -> dict:
    """``mt train`` in a child process with a fresh cache; its peak RSS (MB) and wall seconds."""
    config = work / "config.json"
    config.write_text(json.dumps({"model": MODEL, "data": {"vocab_size": 2000},
                                  "train": {"batch_tokens": 8192, "validate_every": 10**9, "log_every": 100}}))
    run_dir = work / f"run-{time.monotonic_ns()}"
    command = [str(Path(sys.executable).parent / "mt"), "train", "--config", str(config), "--train", str(corpus),
               "--dev", str(dev), "--src", "en", "--tgt", "de", "--threads", str(threads), "--output", str(run_dir), *limit]
    env = {**os.environ, "MT_CACHE": str(work / f"cache-{run_dir.name}")}
    code = (f"import resource, subprocess, sys, time; t = time.time(); "
            f"r = subprocess.run({command!r}, stdout=subprocess.DEVNULL); "
            f"print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.time() - t)")
    returncode, rss_kb, seconds = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                                 text=True, check=True).stdout.split()
    if int(returncode):
        raise SystemExit(f"mt train failed ({returncode}): {' '.join(command)}")
    events = read_train_log(run_dir)
    start, end = events[0], events[-1]
    return {"peak_rss_mb": int(rss_kb) / 1024, "wall_seconds": float(seconds), "prepare_seconds": start["prepare_seconds"],
            "train_pairs": start["train_pairs"], "steps": end["step"], "cache": env["MT_CACHE"]}


def reopen_seconds(corpus: Path, cache: str) -> float:
    """Seconds to re-open a tokenized corpus from its cache in a fresh process (after imports):
    hash the corpus files, load the cached tokenizer, memory-map the Arrow file, read the lengths.
    Raises SystemExit if the cache was missed (a new cache entry appeared)."""
    before = sorted(Path(cache).rglob("*"))
    code = ("import sys, time; from mt.config import DataConfig; from mt.data import CorpusReader; "
            "from mt.store import cached_tokenizer, tokenize_corpus; import datasets; "
            f"data = DataConfig(train={str(corpus)!r}, vocab_size=2000, cache_dir={cache!r}); t = time.time(); "
            "reader = CorpusReader(data.train[0], 'en', 'de'); tok = cached_tokenizer([reader], data); "
            "corpus = tokenize_corpus(reader, tok, data); print(time.time() - t, len(corpus))")
    seconds, _ = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                cwd=ROOT).stdout.split()
    if sorted(Path(cache).rglob("*")) != before:
        raise SystemExit(f"re-opening {corpus} missed the cache in {cache}")
    return float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    multi30k = Path(args.data) / "multi30k"
    results: dict = {"pairs": args.pairs, "model": MODEL}
    with tempfile.TemporaryDirectory(prefix="mt-bench-corpus-") as tmp:
        work = Path(tmp)
        large = work / "large"
        repeat_corpus(multi30k / "train", large, args.pairs)
        results["corpus_bytes"] = {"small": sum(Path(f"{multi30k / 'train'}.{l}").stat().st_size for l in ("en", "de")),
                                   "large": sum(Path(f"{large}.{l}").stat().st_size for l in ("en", "de"))}
        for name, corpus in (("small", multi30k / "train"), ("large", large)):
            prepare = run_train(corpus, multi30k / "val", work, ["--max-steps", "1"], args.threads)
            epoch = run_train(corpus, multi30k / "val", work, ["--epochs", "1"], args.threads)
            results[name] = {"prepare_and_one_step": prepare, "one_epoch": epoch,
                             "reopen_seconds": reopen_seconds(corpus, epoch["cache"])}
            print(name, json.dumps(results[name]), flush=True)
        shutil.rmtree(work, ignore_errors=True)
    small, large = results["small"], results["large"]
    results["ratios"] = {
        "pairs": large["one_epoch"]["train_pairs"] / small["one_epoch"]["train_pairs"],
        "corpus_bytes": results["corpus_bytes"]["large"] / results["corpus_bytes"]["small"],
        "peak_rss_prepare": large["prepare_and_one_step"]["peak_rss_mb"] / small["prepare_and_one_step"]["peak_rss_mb"],
        "peak_rss_epoch": large["one_epoch"]["peak_rss_mb"] / small["one_epoch"]["peak_rss_mb"],
    }
    print(json.dumps(results["ratios"], indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
