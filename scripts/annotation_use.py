"""Does a model read its terminology annotations? Term use without constraints, sources plain vs annotated.

    python scripts/annotation_use.py --checkpoint checkpoints/default --glossary build/glossary-dev.tsv \
        --dev ../shared/data/tatoeba-en-zh/dev.tsv --sentences 150

On the first ``--sentences`` dev sentences in which the glossary matches, beam search *without* the
constraints of ``mt.constraints``, once on the plain sources and once on sources annotated as
``mt.terminology.annotate`` does: term use (the share of matched terms whose target term is in the
output) says how much the annotations alone move the model. Not a test: it prints.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from mt.data import read_corpus
from mt.device import set_threads
from mt.glossary import read_glossary
from mt.search import beam_search
from mt.terminology import annotate
from mt.tokenizer import EOS_ID, PAD_ID
from mt.translate import Translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/default"))
    parser.add_argument("--glossary", type=Path, required=True)
    parser.add_argument("--dev", required=True, help="dev corpus (TSV or prefix)")
    parser.add_argument("--sentences", type=int, default=150)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    set_threads(args.threads)
    translator = Translator.from_checkpoint(args.checkpoint, device="cpu")
    tokenizer, glossary = translator.tokenizer, read_glossary(args.glossary)
    corpus = read_corpus(args.dev, tokenizer.src_lang, tokenizer.tgt_lang)
    chosen = [(source, found) for source in corpus.sources if (found := glossary.match(source))][: args.sentences]
    decode = dataclasses.replace(translator.config.decode, beam_size=args.beam_size)
    terms = sum(len(found) for _, found in chosen)
    print(f"{args.checkpoint}: {len(chosen)} sentences of {args.dev} with {terms} glossary terms, beam {args.beam_size}, "
          "no constraints")
    for annotated in (False, True):
        outputs = []
        for start in range(0, len(chosen), 32):
            batch = chosen[start : start + 32]
            ids = [tokenizer.encode_src([source])[0] for source, _ in batch]
            if annotated:
                ids = [annotate(tokenizer, source, row, found) for (source, found), row in zip(batch, ids)]
            width = max(map(len, ids)) + 1
            src = torch.tensor([row + [EOS_ID] + [PAD_ID] * (width - len(row) - 1) for row in ids])
            with torch.inference_mode():
                hypotheses = beam_search(translator.model, src, src != PAD_ID, decode)
            outputs += tokenizer.decode_tgt([h[0].tokens for h in hypotheses])
        used = sum(match.target in output for (_, found), output in zip(chosen, outputs) for match in found)
        print(f"  {'annotated' if annotated else 'plain':>9} sources: term use {used}/{terms} = {100 * used / max(terms, 1):.1f}%")


if __name__ == "__main__":
    main()
