"""The glossary whose terms training annotates (data.terminology; mt.terminology), from a dictionary
TSV and the training corpora only, with a report of how many pairs it would annotate.

    python scripts/terminology_glossary.py build/cedict.tsv -o build/terms-train.tsv \
        --train ../shared/data/tatoeba-en-zh/train.tsv --train ../shared/data/libreoffice-en-zh/help-train.tsv

An entry is kept when its English side occurs in a training source and its Chinese side in that
pair's target (``mt.terminology.attested_glossary``, the rule of the dev glossary of
``scripts/bench_glossary.py``). Never give it a dev or test set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mt.data import CorpusReader
from mt.files import atomic_output
from mt.terminology import attested_glossary, training_matches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dictionary", type=Path, help="English<TAB>Chinese TSV (scripts/cedict_pairs.py)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="glossary TSV to write")
    parser.add_argument("--train", action="append", required=True, help="training corpus (TSV or prefix); repeat")
    parser.add_argument("--rate", type=float, default=0.5, help="data.terminology_rate, for the report")
    args = parser.parse_args()

    def pairs():
        for spec in args.train:
            yield from CorpusReader(spec, "en", "zh")

    glossary = attested_glossary(args.dictionary, pairs(), "training glossary")
    with atomic_output(args.output, [args.dictionary]) as handle:
        handle.write("".join(f"{entry.source}\t{entry.target}\n" for entry in glossary.entries.values()))
    total = annotated = terms = 0
    for source, target in pairs():
        found = training_matches(glossary, source, target, args.rate)
        total, annotated, terms = total + 1, annotated + bool(found), terms + len(found)
    print(f"{len(glossary):,} entries -> {args.output}; at rate {args.rate}: {annotated:,} of {total:,} training pairs "
          f"({100 * annotated / max(total, 1):.1f}%) annotated, {terms:,} terms")


if __name__ == "__main__":
    main()
