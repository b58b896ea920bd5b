"""Where decoding time goes, step by step (not a test: it prints a table).

Times every ``encode`` and ``decode_step`` call while translating Multi30k ``test_2016_flickr``
and groups the decoder steps by how many rows (sentences x beams) they ran. A step costs a
fixed part (reading every decoder weight, and ~100 small ops) plus a part per row, so steps with
few rows, the tail of each batch where a handful of sentences are still being written, cost far
more per row than full ones. The last line says what all rows would cost at the per-row cost of
steps with at least ``--full-rows`` rows: the most that refilling batches could save.

    python scripts/decode_steps.py --checkpoint checkpoints/m30k-small --beam-size 1
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUCKETS = (16, 64, 128, 256, 10**9)


def timed(function, calls: list):
    """``function`` that appends (rows of its first argument, seconds) to ``calls`` each time it runs."""
    def wrapper(*args):
        start = time.perf_counter()
        output = function(*args)
        calls.append((args[0].size(0), time.perf_counter() - start))
        return output
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--batch-tokens", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--full-rows", type=int, default=200)
    args = parser.parse_args()
    from mt.device import set_threads, tune_process

    tune_process()  # measure under the settings `mt` runs with
    set_threads(args.threads)

    from rich.console import Console
    from rich.table import Table

    from mt.config import DecodeConfig
    from mt.data import read_corpus
    from mt.translate import Translator

    translator = Translator.from_checkpoint(Path(args.checkpoint), device="cpu")
    sources = read_corpus(str(Path(args.data) / "multi30k" / "test_2016_flickr"), "en", "de").sources
    decode = DecodeConfig(beam_size=args.beam_size, batch_tokens=args.batch_tokens)
    list(translator.translate(sources[:50], decode))  # warm-up
    encodes, steps = [], []
    model = translator.model
    model.encode, model.decode_step = timed(model.encode, encodes), timed(model.decode_step, steps)
    start = time.perf_counter()
    list(translator.translate(sources, decode))
    total = time.perf_counter() - start

    buckets = defaultdict(lambda: [0, 0, 0.0])  # steps, rows, seconds
    for rows, seconds in steps:
        bucket = buckets[min(limit for limit in BUCKETS if rows <= limit)]
        bucket[0], bucket[1], bucket[2] = bucket[0] + 1, bucket[1] + rows, bucket[2] + seconds
    table = Table(title=f"decoder steps by rows, beam {args.beam_size}, {args.batch_tokens}-token batches, "
                        f"{len(sources):,} sentences")
    for column in ("rows per step", "steps", "rows", "seconds", "us per row"):
        table.add_column(column, justify="right")
    lower = 1
    for limit in sorted(buckets):
        count, rows, seconds = buckets[limit]
        table.add_row(f"{lower}-{limit}" if limit < BUCKETS[-1] else f">{lower - 1}", f"{count:,}", f"{rows:,}",
                      f"{seconds:.2f}", f"{seconds / rows * 1e6:,.0f}")
        lower = limit + 1
    console = Console(width=120)
    console.print(table)
    step_seconds, all_rows = sum(s for _, s in steps), sum(r for r, _ in steps)
    full = [(rows, seconds) for rows, seconds in steps if rows >= args.full_rows]
    console.print(f"total {total:.2f} s: encode {sum(s for _, s in encodes):.2f} s, decoder steps {step_seconds:.2f} s "
                  f"({len(steps):,} steps, {all_rows:,} rows), search bookkeeping and the rest "
                  f"{total - step_seconds - sum(s for _, s in encodes):.2f} s")
    if full:
        per_row = sum(s for _, s in full) / sum(r for r, _ in full)
        console.print(f"at the per-row cost of steps with >= {args.full_rows} rows ({per_row * 1e6:.0f} us), "
                      f"the decoder steps would take {all_rows * per_row:.2f} s instead of {step_seconds:.2f} s")


if __name__ == "__main__":
    main()
