#!/usr/bin/env bash
# The Multi30k en->de Transformer of the README's results: 60 minutes of `mt train` on this
# machine's CPU, then beam-5 test BLEU/chrF (cased, detokenized) and lc+tok BLEU on test_2016_flickr.
#   DATA=../shared/data MINUTES=60 scripts/train_multi30k.sh
# The positions rows (30 minutes on one core each, sinusoidal and learned side by side):
#   POSITIONS=learned MINUTES=30 THREADS=1 RUN=checkpoints/m30k-positions-learned scripts/train_multi30k.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
data="${DATA:-$root/../shared/data}/multi30k"
run="${RUN:-checkpoints/m30k-small}"
if [ ! -d "$run/last" ]; then
  mt train --config scripts/configs/multi30k-en-de.yaml --train "$data/train" --dev "$data/val" \
    --positions "${POSITIONS:-sinusoidal}" --threads "${THREADS:-0}" --max-time "${MINUTES:-60}m" --output "$run"
fi
mt eval --test "$data/test_2016_flickr" --checkpoint "$run" --beam-size 5 --threads "${THREADS:-0}" \
  --tok-references "$data/tok/test_2016_flickr.lc.norm.tok.de" -o "$run/test_2016_flickr.hyp.de" --json "$run/test.json"
mt translate "I love machine learning" --checkpoint "$run"
