#!/usr/bin/env bash
# One RNN row of the README's results table: train a preset with `mt train` on Multi30k en->de
# or Tatoeba en->zh, then BLEU/chrF on its test set, beam 5 or BEAM (Multi30k also lc+tok BLEU).
#   scripts/train_rnn.sh rnn-luong multi30k 30 1      # preset, corpus, minutes, threads (0 = all)
# RUN names the run directory, TRAIN_FLAGS adds mt train options, and AVERAGE="5 10" ends with
# the averages of the run's last 5 and 10 step checkpoints, each scored on dev and test; BEAM
# sets the beam size (default 5; another one is named in the files written, e.g. test.beam-12.json):
#   RUN=checkpoints/m30k-rnn-bahdanau-60 TRAIN_FLAGS="--save-every 100 --keep 10" AVERAGE="5 10" BEAM=12 \
#     scripts/train_rnn.sh rnn-bahdanau multi30k 60 0
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
preset="${1:?usage: $0 PRESET multi30k|tatoeba [MINUTES] [THREADS]}"
corpus="${2:?usage: $0 PRESET multi30k|tatoeba [MINUTES] [THREADS]}"
minutes="${3:-30}"
threads="${4:-0}"
beam="${BEAM:-5}"
tag="${BEAM:+.beam-$BEAM}"  # in the names of the files written
data="${DATA:-$root/../shared/data}"
case "$corpus" in
  multi30k)
    run="${RUN:-checkpoints/m30k-$preset}"
    corpus_flags=(--train "$data/multi30k/train" --dev "$data/multi30k/val" --src en --tgt de)
    dev_flags=(--test "$data/multi30k/val" --tok-references "$data/multi30k/tok/val.lc.norm.tok.de")
    test_flags=(--test "$data/multi30k/test_2016_flickr"
                --tok-references "$data/multi30k/tok/test_2016_flickr.lc.norm.tok.de")
    hypotheses="test_2016_flickr.hyp.de" ;;
  tatoeba)
    # English and Chinese share almost no pieces; short pairs, so smaller batches for more updates.
    run="${RUN:-checkpoints/en-zh-$preset}"
    corpus_flags=(--train "$data/tatoeba-en-zh/train.tsv" --dev "$data/tatoeba-en-zh/dev.tsv"
                  --src en --tgt zh --separate-vocab --batch-tokens 2048)
    dev_flags=(--test "$data/tatoeba-en-zh/dev.tsv")
    test_flags=(--test "$data/tatoeba-en-zh/test.tsv")
    hypotheses="test.hyp.zh" ;;
  *) echo "unknown corpus '$corpus': expected multi30k or tatoeba" >&2; exit 2 ;;
esac
if [ ! -d "$run/last" ]; then
  mt train --preset "$preset" --threads "$threads" "${corpus_flags[@]}" \
    --max-time "${minutes}m" --validate-every 500 ${TRAIN_FLAGS:-} --output "$run"
fi
mt eval --checkpoint "$run" --beam-size "$beam" --threads "$threads" "${test_flags[@]}" \
  -o "$run/${BEAM:+beam-$BEAM.}$hypotheses" --json "$run/test$tag.json"
if [ -n "${AVERAGE:-}" ]; then  # the best checkpoint on dev too, beside the averages
  mt eval --checkpoint "$run" --beam-size "$beam" --threads "$threads" "${dev_flags[@]}" --json "$run/dev$tag.json"
fi
for last in ${AVERAGE:-}; do
  [ -d "$run/average-$last" ] || mt average "$run" --last "$last" -o "$run/average-$last"
  mt eval --checkpoint "$run/average-$last" --beam-size "$beam" --threads "$threads" "${dev_flags[@]}" \
    --json "$run/dev.average-$last$tag.json"
  mt eval --checkpoint "$run/average-$last" --beam-size "$beam" --threads "$threads" "${test_flags[@]}" \
    -o "$run/average-$last$tag.$hypotheses" --json "$run/test.average-$last$tag.json"
done
