"""The README's results table, from what the training scripts left in their run directories.

Each row is one run directory made by one script (see ROWS): its ``train_log.jsonl`` gives the
training minutes, updates, threads and median target tokens/s; ``best/model.safetensors`` the
model size; ``test.json`` (written by ``mt eval --json``; a row may name another, such as an
averaged checkpoint's ``test.average-5.json``) the test scores with their sacrebleu signatures
and the decoding speed. A run that is missing is listed as such, never guessed.

    python scripts/results_table.py            # prints Markdown
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from mt.plot import read_train_log

ROOT = Path(__file__).resolve().parents[1]
ROWS = [  # corpus, model, run directory, the script that makes it[, its scores file]
    ("Multi30k en->de", "Transformer", "checkpoints/m30k-small", "scripts/train_multi30k.sh"),
    ("Multi30k en->de", "Transformer-Tiny, average of the last 10 checkpoints", "checkpoints/m30k-tiny",
     'PRESET=transformer-tiny CONFIG=scripts/configs/multi30k-tiny.yaml RUN=checkpoints/m30k-tiny AVERAGE="5 10" '
     "scripts/train_multi30k.sh", "test.average-10.json"),
    ("Multi30k en->de", "RNN + Bahdanau", "checkpoints/m30k-rnn-bahdanau", "scripts/train_rnn.sh rnn-bahdanau multi30k 30 1"),
    ("Multi30k en->de", "RNN + Bahdanau, 60 min, average of the last 5 checkpoints, beam 12", "checkpoints/m30k-rnn-bahdanau-60",
     'RUN=checkpoints/m30k-rnn-bahdanau-60 TRAIN_FLAGS="--save-every 100 --keep 10" AVERAGE="5 10" BEAM=12 '
     "scripts/train_rnn.sh rnn-bahdanau multi30k 60 0", "test.average-5.beam-12.json"),
    ("Multi30k en->de", "RNN + Luong (general)", "checkpoints/m30k-rnn-luong", "scripts/train_rnn.sh rnn-luong multi30k 30 1"),
    ("Multi30k en->de", "RNN + Luong (local-p)", "checkpoints/m30k-rnn-luong-local", "scripts/train_rnn.sh rnn-luong-local multi30k 30 1"),
    ("Multi30k en->de", "RNN + Luong (local-m)", "checkpoints/m30k-rnn-luong-local-m", "scripts/train_rnn.sh rnn-luong-local-m multi30k 30 1"),
    ("Multi30k en->de", "RNN + hard attention (Gumbel)", "checkpoints/m30k-rnn-hard", "scripts/train_rnn.sh rnn-hard multi30k 30 1"),
    ("Multi30k en->de", "RNN + hard attention (REINFORCE)", "checkpoints/m30k-rnn-hard-reinforce",
     "scripts/train_rnn.sh rnn-hard-reinforce multi30k 30 1"),
    ("Multi30k en->de", "Transformer, sinusoidal positions, 30 min (1)", "checkpoints/m30k-positions-sinusoidal",
     "POSITIONS=sinusoidal MINUTES=30 THREADS=1 RUN=checkpoints/m30k-positions-sinusoidal scripts/train_multi30k.sh"),
    ("Multi30k en->de", "Transformer, learned positions, 30 min (1)", "checkpoints/m30k-positions-learned",
     "POSITIONS=learned MINUTES=30 THREADS=1 RUN=checkpoints/m30k-positions-learned scripts/train_multi30k.sh"),
    ("Tatoeba en->zh", "Transformer", "checkpoints/transformer-en-zh", "scripts/train_default_en_zh.sh"),
    ("Tatoeba en->zh", "RNN + Bahdanau", "checkpoints/en-zh-rnn-bahdanau", "scripts/train_rnn.sh rnn-bahdanau tatoeba 20 1"),
    ("Tatoeba en->zh", "RNN + Luong (general)", "checkpoints/en-zh-rnn-luong", "scripts/train_rnn.sh rnn-luong tatoeba 20 1"),
    ("Tatoeba en->zh", "RNN + Luong (local-p)", "checkpoints/en-zh-rnn-luong-local", "scripts/train_rnn.sh rnn-luong-local tatoeba 20 1"),
]


def training(run: Path) -> dict:
    events = read_train_log(run)
    speeds = [e["tgt_tokens_per_s"] for e in events if e["event"] == "train"]
    start = next(e for e in events if e["event"] in ("start", "resume"))
    ends = [e for e in events if e["event"] == "end"]
    last = ends[-1] if ends else max((e for e in events if "elapsed" in e), key=lambda e: e["elapsed"])
    return {"minutes": last["elapsed"] / 60, "steps": last["step"], "threads": start["threads"],
            "parameters": start["parameters"], "tgt_tokens_per_s": statistics.median(speeds)}


def scores(path: Path) -> dict:
    report = json.loads(path.read_text(encoding="utf-8"))
    by_name = {score["name"]: score for score in report["scores"]}
    return {"bleu": by_name["BLEU"], "chrf": by_name["chrF"], "lc_tok": by_name.get("lc+tok BLEU"),
            "sentences_per_s": report["sentences_per_s"], "decode_threads": report["threads"]}


def main() -> None:
    print("| corpus | model | BLEU | chrF | lc+tok BLEU | parameters | fp32 weights (MB) | train minutes (threads) | updates "
          "| tgt tok/s | test sent/s (threads) | script |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    signatures = {}
    for corpus, model, run_name, script, *report in ROWS:
        run = ROOT / run_name
        report_path = run / (report[0] if report else "test.json")
        if not report_path.is_file():
            print(f"| {corpus} | {model} | not run | | | | | | | | | `{script}` |")
            continue
        train, test = training(run), scores(report_path)
        size = (run / "best" / "model.safetensors").stat().st_size / 2**20
        lc_tok = f"{test['lc_tok']['score']:.2f}" if test["lc_tok"] else "–"
        print(f"| {corpus} | {model} | **{test['bleu']['score']:.2f}** | {test['chrf']['score']:.2f} | {lc_tok} "
              f"| {train['parameters'] / 1e6:.1f}M | {size:.0f} | {train['minutes']:.1f} ({train['threads']}) | {train['steps']:,} "
              f"| {train['tgt_tokens_per_s']:,.0f} | {test['sentences_per_s']:.1f} ({test['decode_threads']}) | `{script}` |")
        for name in ("bleu", "chrf", "lc_tok"):
            if test[name]:
                signatures.setdefault(f"{corpus} {test[name]['name']}", test[name]["signature"])
    print()
    for name, signature in signatures.items():
        print(f"- {name}: `{signature}`")


if __name__ == "__main__":
    sys.exit(main())
