"""CC-CEDICT -> English<TAB>Simplified Chinese training pairs (mt.dictionary), with a report.

    python scripts/cedict_pairs.py ../shared/data/cc-cedict/cedict_1_0_ts_utf-8_mdbg.txt.gz -o build/cedict.tsv

The third column names the source, as CC BY-SA 4.0 asks. Prints entries and glosses kept and
dropped, by reason.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

from mt.dictionary import Report, dictionary_pairs
from mt.files import atomic_output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cedict", type=Path, help="cedict_1_0_ts_utf-8_mdbg.txt(.gz)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="TSV to write")
    parser.add_argument("--max-words", type=int, default=4, help="drop glosses longer than this many words")
    parser.add_argument("--per-entry", type=int, default=2, help="pairs kept per entry at most")
    args = parser.parse_args()
    report = Report()
    opener = gzip.open if args.cedict.suffix == ".gz" else open
    with opener(args.cedict, "rt", encoding="utf-8") as lines, atomic_output(args.output, [args.cedict]) as out:
        for english, chinese in dictionary_pairs(lines, args.max_words, args.per_entry, report):
            out.write(f"{english}\t{chinese}\tCC-CEDICT (MDBG), CC BY-SA 4.0\n")
    print(f"{report.entries:,} entries: {report.entries_kept:,} kept, dropped: "
          + ", ".join(f"{reason} {count:,}" for reason, count in report.entries_dropped.most_common()))
    print(f"{report.glosses_kept:,} pairs -> {args.output}; glosses dropped: "
          + ", ".join(f"{reason} {count:,}" for reason, count in report.glosses_dropped.most_common()))


if __name__ == "__main__":
    main()
