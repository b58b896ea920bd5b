#!/usr/bin/env bash
# Train the shipped English->Chinese model and export it to checkpoints/default (bf16 weights).
#   DATA=../shared/data MINUTES=100 scripts/train_default_en_zh.sh
# Corpora: Tatoeba train.tsv (weight 1), the HSK sentence pairs (weight HSK_WEIGHT, default 2),
# CC-CEDICT pairs made by scripts/cedict_pairs.py (weight CEDICT_WEIGHT, default 0.2, about 27k of
# its 137k pairs an epoch) and LibreOffice's UI strings and help paragraphs (weight LO_WEIGHT each,
# default 0.5). Validation, and so the best checkpoint, on both dev sets at once: Tatoeba dev.tsv
# and LibreOffice help-dev.tsv, concatenated. Then scores both dev sets (each alone) and the
# Tatoeba test set (sacrebleu, tokenize zh, beam 5) for the fp32 best checkpoint and the bf16 export.
# Two stages: (1) MINUTES of training on the corpora; (2) TERMS_STEPS (default 3,000) updates of
# fine-tuning from stage 1's best checkpoint on the same corpora with training-time terminology
# (mt.terminology, Dinu et al. 2019), so the model learns to place the terms of a --glossary: the
# CC-CEDICT terms (scripts/terminology_glossary.py) found in a pair whose reference holds one of
# their targets are annotated at rate TERMS_RATE (0.5), TERMS_SUBSTITUTE (0.5) of them with another
# target of the term swapped in, in the source and the reference.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
data="${DATA:-$root/../shared/data}"
base="${BASE_RUN:-checkpoints/transformer-en-zh-lo}"
run="${RUN:-checkpoints/transformer-en-zh-terms}"
mkdir -p build
[ -f build/cedict.tsv ] || python scripts/cedict_pairs.py "$data/cc-cedict/cedict_1_0_ts_utf-8_mdbg.txt.gz" -o build/cedict.tsv
cat "$data/tatoeba-en-zh/dev.tsv" "$data/libreoffice-en-zh/help-dev.tsv" > build/dev-en-zh-mix.tsv
corpora=(--train "$data/tatoeba-en-zh/train.tsv" --train "$data/hsk-sentences/hsk.tsv@${HSK_WEIGHT:-2}"
  --train "build/cedict.tsv@${CEDICT_WEIGHT:-0.2}" --train "$data/libreoffice-en-zh/ui.tsv@${LO_WEIGHT:-0.5}"
  --train "$data/libreoffice-en-zh/help-train.tsv@${LO_WEIGHT:-0.5}")
if [ ! -d "$base/last" ]; then
  mt train --config scripts/configs/default-en-zh.yaml --dev build/dev-en-zh-mix.tsv "${corpora[@]}" \
    --max-time "${MINUTES:-100}m" --keep 3 --output "$base"
fi
python scripts/terminology_glossary.py build/cedict.tsv -o build/terms-train.tsv --rate "${TERMS_RATE:-0.5}" --substitute "${TERMS_SUBSTITUTE:-0.5}" \
  --train "$data/tatoeba-en-zh/train.tsv" --train "$data/hsk-sentences/hsk.tsv" \
  --train "$data/libreoffice-en-zh/ui.tsv" --train "$data/libreoffice-en-zh/help-train.tsv"
if [ ! -d "$run/last" ]; then
  mt train --config scripts/configs/default-en-zh.yaml --init-from "$base/best" --dev build/dev-en-zh-mix.tsv "${corpora[@]}" \
    --terminology build/terms-train.tsv --terminology-rate "${TERMS_RATE:-0.5}" --terminology-substitute "${TERMS_SUBSTITUTE:-0.5}" \
    --lr 0.0005 --warmup 200 \
    --max-steps "${TERMS_STEPS:-3000}" --keep 3 --output "$run"
fi
card="$(mktemp)"  # mt export replaces only what it wrote: the model card steps aside
mv checkpoints/default/README.md "$card"
mt export "$run" checkpoints/default --dtype bf16
mv "$card" checkpoints/default/README.md
for checkpoint in "$run" checkpoints/default; do
  name="$(basename "$checkpoint")"
  mt eval --test "$data/tatoeba-en-zh/dev.tsv" --checkpoint "$checkpoint" --beam-size 5 --json "$run/dev-tatoeba-$name.json"
  mt eval --test "$data/libreoffice-en-zh/help-dev.tsv" --checkpoint "$checkpoint" --beam-size 5 --json "$run/dev-help-$name.json"
  mt eval --test "$data/tatoeba-en-zh/test.tsv" --checkpoint "$checkpoint" --beam-size 5 --json "$run/test-$name.json"
done
