"""Glossaries on dev sets: term use, BLEU and speed without and with a glossary (not a test: it prints and writes JSON).

    python scripts/bench_glossary.py --checkpoint checkpoints/default --dictionary build/cedict.tsv \
        --dev ../shared/data/tatoeba-en-zh/dev.tsv --dev ../shared/data/libreoffice-en-zh/help-dev.tsv \
        --glossary-output build/glossary-dev.tsv --json results/glossary.json

The dev glossary is made from a dictionary TSV (English<TAB>Chinese, e.g. ``scripts/cedict_pairs.py``'s
output) and the dev sets alone, never a test set (``mt.terminology.attested_glossary``): an entry is
kept when its English side (4 letters or more, 1-4 words) occurs in a dev source and its Chinese
side (2 characters or more) in that sentence's reference; an English term found with several
Chinese terms keeps the most frequent.
Term use is the share of terms found in the sources (``Glossary.match``) whose target term is in the
output. Each dev set is decoded ``--rounds`` times each way, alternating in one process; the speed
is the best pass of each, their ratio the glossary's cost.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mt.config import DecodeConfig
from mt.data import read_corpus
from mt.device import set_threads
from mt.files import atomic_output
from mt.glossary import Glossary
from mt.metrics import corpus_scores
from mt.terminology import attested_glossary
from mt.translate import Translator


def term_use(results, glossary: Glossary) -> tuple[int, int]:
    """(terms found in the sources, of which the target term is in the output)."""
    found = [(match.target, result.text) for result in results for match in glossary.match(result.source)]
    return len(found), sum(target in text for target, text in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/default"))
    parser.add_argument("--dictionary", type=Path, required=True, help="English<TAB>Chinese TSV (scripts/cedict_pairs.py)")
    parser.add_argument("--dev", action="append", required=True, help="dev corpus (TSV or prefix); repeat")
    parser.add_argument("--glossary-output", type=Path, help="write the dev glossary here (TSV)")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    set_threads(args.threads)
    translator = Translator.from_checkpoint(args.checkpoint, device="cpu")
    src, tgt = translator.tokenizer.src_lang, translator.tokenizer.tgt_lang
    corpora = [read_corpus(dev, src, tgt) for dev in args.dev]
    glossary = attested_glossary(args.dictionary, (pair for corpus in corpora for pair in zip(corpus.sources, corpus.targets)),
                                 "dev glossary")
    if args.glossary_output:
        with atomic_output(args.glossary_output, [args.dictionary]) as handle:
            handle.write("".join(f"{e.source}\t{e.target}\n" for e in glossary.entries.values()))
    decode = DecodeConfig(**{**vars(translator.config.decode), "beam_size": args.beam_size})
    print(f"{args.checkpoint}: dev glossary of {len(glossary)} entries, beam {args.beam_size}")
    print(f"{'dev set':<28} {'glossary':>8} {'terms':>6} {'used':>6} {'term use':>8} {'BLEU':>6} {'chrF':>6} {'sent/s':>7}")
    rows = []
    for dev, corpus in zip(args.dev, corpora):
        runs: dict[bool, dict] = {}
        for _ in range(args.rounds):
            for constrained in (False, True):
                started = time.perf_counter()
                results = list(translator.translate(corpus.sources, decode, glossary=glossary if constrained else None))
                seconds = time.perf_counter() - started
                if constrained not in runs or seconds < runs[constrained]["seconds"]:
                    runs[constrained] = {"seconds": seconds, "results": results}
        for constrained, run in runs.items():
            hypotheses = [result.text for result in run["results"]]
            bleu, chrf = corpus_scores(hypotheses, corpus.targets, tokenize="zh" if tgt == "zh" else "13a")[:2]
            terms, used = term_use(run["results"], glossary)
            row = {"dev": dev, "glossary": constrained, "sentences": len(corpus), "terms": terms, "used": used,
                   "term_use": used / max(terms, 1), "bleu": bleu.score, "chrf": chrf.score, "bleu_signature": bleu.signature,
                   "seconds": run["seconds"], "sentences_per_s": len(corpus) / run["seconds"]}
            rows.append(row)
            print(f"{Path(dev).name:<28} {'with' if constrained else 'without':>8} {terms:>6} {used:>6} "
                  f"{100 * row['term_use']:>7.1f}% {bleu.score:>6.2f} {chrf.score:>6.2f} {row['sentences_per_s']:>7.1f}")
        print(f"{'':<28} glossary / none time: {runs[True]['seconds'] / runs[False]['seconds']:.2f}x")
    print(f"BLEU signature: {rows[0]['bleu_signature']}")
    if args.json:
        with atomic_output(args.json, []) as handle:
            handle.write(json.dumps({"checkpoint": str(args.checkpoint), "entries": len(glossary), "beam_size": args.beam_size,
                                     "rows": rows}, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
