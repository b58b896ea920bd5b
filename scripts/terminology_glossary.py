"""The term dictionary training annotates (data.terminology; mt.terminology), from a dictionary TSV,
with a report of what it would annotate in the training corpora.

    python scripts/terminology_glossary.py build/cedict.tsv -o build/terms-train.tsv \
        --train ../shared/data/tatoeba-en-zh/train.tsv --train ../shared/data/libreoffice-en-zh/help-train.tsv

Keeps the dictionary's pairs a glossary could hold (``mt.terminology.dictionary_terms``: English 4
letters or more, 1-4 words; Chinese 2 characters or more), every Chinese term of an English one, a
row each. Which pairs get annotated is decided in training, against each pair's reference
(``mt.terminology.training_terms``): never give --train a dev or test set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mt.data import CorpusReader
from mt.files import atomic_output
from mt.glossary import GlossaryEntry
from mt.terminology import TermDictionary, dictionary_terms, training_terms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dictionary", type=Path, help="English<TAB>Chinese TSV (scripts/cedict_pairs.py)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="term dictionary TSV to write")
    parser.add_argument("--train", action="append", required=True, help="training corpus (TSV or prefix) to report on; repeat")
    parser.add_argument("--rate", type=float, default=0.5, help="data.terminology_rate, for the report")
    parser.add_argument("--substitute", type=float, default=0.5, help="data.terminology_substitute, for the report")
    args = parser.parse_args()

    rows = [(" ".join(key), target) for key, targets in dictionary_terms(args.dictionary).items() for target in sorted(targets)]
    with atomic_output(args.output, [args.dictionary]) as handle:
        handle.write("".join(f"{source}\t{target}\n" for source, target in rows))
    dictionary = TermDictionary(GlossaryEntry(source, target, str(args.output)) for source, target in rows)
    pairs = annotated = terms = swapped = 0
    for spec in args.train:
        for source, target in CorpusReader(spec, "en", "zh"):
            found, trained = training_terms(dictionary, source, target, args.rate, args.substitute)
            pairs, annotated, terms, swapped = pairs + 1, annotated + bool(found), terms + len(found), swapped + (trained != target)
    print(f"{len(rows):,} rows, {len(dictionary):,} source terms -> {args.output}")
    print(f"at rate {args.rate}, substitute {args.substitute}: {annotated:,} of {pairs:,} training pairs ({100 * annotated / max(pairs, 1):.1f}%) "
          f"annotated, {terms:,} terms; {swapped:,} pairs with a target swapped")


if __name__ == "__main__":
    main()
