#!/usr/bin/env bash
# Train the shipped English->Chinese model and export it to checkpoints/default (bf16 weights).
#   DATA=../shared/data MINUTES=85 scripts/train_default_en_zh.sh
# Corpora: Tatoeba train.tsv (weight 1), the HSK sentence pairs (weight HSK_WEIGHT, default 2) and
# CC-CEDICT pairs made by scripts/cedict_pairs.py (weight CEDICT_WEIGHT, default 0.2, about 27k of
# its 137k pairs an epoch). Prints test BLEU (sacrebleu, tokenize zh, beam 5) of the fp32 best
# checkpoint and of the bf16 export.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
data="${DATA:-$root/../shared/data}"
run="checkpoints/transformer-en-zh-mix"
mkdir -p build
[ -f build/cedict.tsv ] || python scripts/cedict_pairs.py "$data/cc-cedict/cedict_1_0_ts_utf-8_mdbg.txt.gz" -o build/cedict.tsv
if [ ! -d "$run/last" ]; then
  mt train --config scripts/configs/default-en-zh.yaml --dev "$data/tatoeba-en-zh/dev.tsv" \
    --train "$data/tatoeba-en-zh/train.tsv" --train "$data/hsk-sentences/hsk.tsv@${HSK_WEIGHT:-2}" \
    --train "build/cedict.tsv@${CEDICT_WEIGHT:-0.2}" --max-time "${MINUTES:-85}m" --output "$run"
fi
mt export "$run" checkpoints/default --dtype bf16
mt eval --test "$data/tatoeba-en-zh/test.tsv" --checkpoint "$run" --beam-size 5 --json "$run/test.json"
mt eval --test "$data/tatoeba-en-zh/test.tsv" --checkpoint checkpoints/default --beam-size 5 --json "$run/test-default-bf16.json"
