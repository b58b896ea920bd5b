#!/usr/bin/env bash
# The Multi30k en->de Transformer of the README's results: 60 minutes of `mt train` on this
# machine's CPU, then beam-5 test BLEU/chrF (cased, detokenized) and lc+tok BLEU on test_2016_flickr.
#   DATA=../shared/data MINUTES=60 scripts/train_multi30k.sh
# Transformer-Tiny (Wu et al. 2021), ending with the averages of its last 5 and 10 checkpoints:
#   PRESET=transformer-tiny CONFIG=scripts/configs/multi30k-tiny.yaml RUN=checkpoints/m30k-tiny AVERAGE="5 10" \
#     scripts/train_multi30k.sh
# The positions rows (30 minutes on one core each, sinusoidal and learned side by side):
#   POSITIONS=learned MINUTES=30 THREADS=1 RUN=checkpoints/m30k-positions-learned scripts/train_multi30k.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
data="${DATA:-$root/../shared/data}/multi30k"
run="${RUN:-checkpoints/m30k-small}"
if [ ! -d "$run/last" ]; then
  mt train ${PRESET:+--preset "$PRESET"} --config "${CONFIG:-scripts/configs/multi30k-en-de.yaml}" --train "$data/train" --dev "$data/val" \
    --positions "${POSITIONS:-sinusoidal}" --threads "${THREADS:-0}" --max-time "${MINUTES:-60}m" --output "$run"
fi
evaluate() {  # checkpoint, suffix of the files written: dev (val) and test scores, beam 5
  for split in val test_2016_flickr; do
    mt eval --test "$data/$split" --checkpoint "$1" --beam-size 5 --threads "${THREADS:-0}" \
      --tok-references "$data/tok/$split.lc.norm.tok.de" -o "$run/$split$2.hyp.de" --json "$run/${split/_2016_flickr/}$2.json"
  done
}
evaluate "$run" ""  # the best checkpoint: val.json, test.json
for last in ${AVERAGE:-}; do  # e.g. AVERAGE="5 10": the mean of the run's last 5, then 10, step checkpoints
  mt average "$run" --last "$last" -o "$run/average-$last"
  evaluate "$run/average-$last" ".average-$last"
done
mt translate "I love machine learning" --checkpoint "$run"
