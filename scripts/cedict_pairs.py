"""CC-CEDICT -> English<TAB>Simplified Chinese training pairs (mt.dictionary), with a report.

    python scripts/cedict_pairs.py ../shared/data/cc-cedict/cedict_1_0_ts_utf-8_mdbg.txt.gz -o build/cedict.tsv \
        [--in-context CORPUS.tsv ... --context-output build/cedict-context.tsv]

The third column names the source, as CC BY-SA 4.0 asks. Prints entries and glosses kept and
dropped, by reason. With --in-context, also writes the dictionary's multi-word terms substituted
into the sentences of those corpora (mt.dictionary.terms_in_context) and says how many it made.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

from mt.data import CorpusReader
from mt.dictionary import ContextReport, Report, dictionary_pairs, terms_in_context
from mt.files import atomic_output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cedict", type=Path, help="cedict_1_0_ts_utf-8_mdbg.txt(.gz)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="TSV to write")
    parser.add_argument("--max-words", type=int, default=4, help="drop glosses longer than this many words")
    parser.add_argument("--per-entry", type=int, default=2, help="pairs kept per entry at most")
    parser.add_argument("--in-context", type=str, nargs="*", default=[], help="English-Chinese corpora (TSV) whose sentences frame the terms")
    parser.add_argument("--context-output", type=Path, help="TSV of the terms in those sentences")
    parser.add_argument("--per-term", type=int, default=1, help="sentences each multi-word term is put into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if bool(args.in_context) != bool(args.context_output):
        parser.error("--in-context and --context-output go together")
    report = Report()
    opener = gzip.open if args.cedict.suffix == ".gz" else open
    with opener(args.cedict, "rt", encoding="utf-8") as lines:
        pairs = list(dictionary_pairs(lines, args.max_words, args.per_entry, report))
    with atomic_output(args.output, [args.cedict]) as out:
        for pair in pairs:
            out.write(f"{pair.english}\t{pair.chinese}\tCC-CEDICT (MDBG), CC BY-SA 4.0\n")
    print(f"{report.entries:,} entries: {report.entries_kept:,} kept, dropped: "
          + ", ".join(f"{reason} {count:,}" for reason, count in report.entries_dropped.most_common()))
    print(f"{report.glosses_kept:,} pairs -> {args.output}; glosses dropped: "
          + ", ".join(f"{reason} {count:,}" for reason, count in report.glosses_dropped.most_common()))

    if args.in_context:
        readers = [CorpusReader(spec, "en", "zh") for spec in args.in_context]
        sentences = (pair for reader in readers for pair in reader)
        context = ContextReport()
        inputs = [args.cedict] + [Path(spec) for spec in args.in_context]
        with atomic_output(args.context_output, inputs) as out:
            for english, chinese in terms_in_context(pairs, sentences, args.per_term, args.seed, context):
                out.write(f"{english}\t{chinese}\n")
        print(f"{context.sentences:,} sentences, {context.frames:,} with a one-word noun on both sides; "
              f"{context.terms:,} multi-word terms -> {context.pairs:,} pairs -> {args.context_output}")


if __name__ == "__main__":
    main()
