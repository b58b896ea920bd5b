#!/usr/bin/env bash
# One RNN row of the README's Multi30k en->de table: train a preset with `mt train`, then beam-5
# BLEU/chrF (cased, detokenized) and lc+tok BLEU on test_2016_flickr.
#   scripts/train_rnn_multi30k.sh rnn-bahdanau 30        # preset, minutes [, threads]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
preset="${1:?usage: $0 PRESET [MINUTES] [THREADS]}"
data="${DATA:-$root/../shared/data}/multi30k"
run="checkpoints/m30k-$preset"
if [ ! -d "$run/last" ]; then
  mt train --preset "$preset" --threads "${3:-0}" --train "$data/train" --dev "$data/val" --src en --tgt de \
    --max-time "${2:-30}m" --validate-every 500 --output "$run"
fi
mt eval --test "$data/test_2016_flickr" --checkpoint "$run" --beam-size 5 \
  --tok-references "$data/tok/test_2016_flickr.lc.norm.tok.de" -o "$run/test_2016_flickr.hyp.de"
