#!/usr/bin/env bash
# Train the shipped English->Chinese model and export it to checkpoints/default (bf16 weights).
#   DATA=../shared/data MINUTES=40 scripts/train_default_en_zh.sh
# Prints test BLEU (sacrebleu, tokenize zh) of the fp32 best checkpoint and of the bf16 export.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
data="${DATA:-$root/../shared/data}/tatoeba-en-zh"
run="checkpoints/transformer-en-zh"
if [ ! -d "$run/last" ]; then
  mt train --config scripts/configs/tatoeba-en-zh.yaml --train "$data/train.tsv" --dev "$data/dev.tsv" \
    --max-time "${MINUTES:-40}m" --output "$run"
fi
mt export "$run" checkpoints/default --dtype bf16
mt eval --test "$data/test.tsv" --checkpoint "$run" --beam-size 5 --json "$run/test.json"
mt eval --test "$data/test.tsv" --checkpoint checkpoints/default --beam-size 5 --json "$run/test-default-bf16.json"
