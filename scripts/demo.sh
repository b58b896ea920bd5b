#!/usr/bin/env bash
# The main job: set up .venv, translate a few sentences with the shipped English->Chinese model
# (checkpoints/default) and, when ../shared/data is there, score it on Tatoeba en-zh test.tsv.
#   DATA=/path/to/data scripts/demo.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
mt translate "I love machine learning" "Where is the train station?" "Tom doesn't like fish." \
  "It is raining today, so we will stay at home."
test_set="${DATA:-$root/../shared/data}/tatoeba-en-zh/test.tsv"
if [ -f "$test_set" ]; then
  mt eval --test "$test_set" --beam-size 5
else
  echo "($test_set not found: skipping the test score)" >&2
fi
