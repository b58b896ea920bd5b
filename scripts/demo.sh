#!/usr/bin/env bash
# The main job on real data: set up .venv, train a small Transformer on Multi30k en->de for a few
# minutes, translate "I love machine learning", and score test_2016_flickr with sacrebleu.
#   DATA=../shared/data MINUTES=5 scripts/demo.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
data="${DATA:-$root/../shared/data}/multi30k"
run="checkpoints/demo-en-de"
if [ ! -f "$data/train.en" ]; then
  echo "Multi30k not found in $data: set DATA to the folder holding multi30k/" >&2
  exit 1
fi
rm -rf "$run"
mt train --train "$data/train" --dev "$data/val" --src en --tgt de --preset transformer-small \
  --max-time "${MINUTES:-5}m" --validate-every 250 --output "$run"
mt translate "I love machine learning" "A man is riding a bicycle down the street." --checkpoint "$run"
mt eval --test "$data/test_2016_flickr" --checkpoint "$run" --beam-size 5
