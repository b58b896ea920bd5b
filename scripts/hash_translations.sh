#!/usr/bin/env bash
# Hash the translations of a test set's sources, greedy and beam 5, fp32 and bf16 (and with
# CTranslate2 when CT2_MODEL names an exported model): a refactoring must leave every hash as it was.
# Each line also gives the wall-clock seconds of that mt translate command (loading included).
#   scripts/hash_translations.sh [SOURCES]    (default: the 1,055 Tatoeba en-zh test sources)
#   CT2_MODEL=build/ct2-default scripts/hash_translations.sh   (mt export checkpoints/default build/ct2-default --format ctranslate2)
set -euo pipefail
data="$(dirname "${BASH_SOURCE[0]}")/../../shared/data"
sources="${1:-}"
if [[ -z "$sources" ]]; then
    sources="$(mktemp)"
    trap 'rm -f "$sources"' EXIT
    cut -f1 "$data/tatoeba-en-zh/test.tsv" > "$sources"
fi
checkpoint="${CHECKPOINT:-checkpoints/default}"
hash() {  # LABEL, then mt translate's options
    local label="$1" start end digest
    shift
    start=$EPOCHREALTIME
    digest=$(mt translate -i "$sources" "$@" | sha256sum | cut -c1-16)
    end=$EPOCHREALTIME
    printf '%-22s %s %6.2f s\n' "$label" "$digest" "$(awk "BEGIN { print $end - $start }")"
}
for beam in 1 5; do
    for precision in fp32 bf16; do
        hash "beam $beam $precision" --checkpoint "$checkpoint" --beam-size "$beam" --precision "$precision"
    done
    if [[ -n "${CT2_MODEL:-}" ]]; then
        hash "beam $beam ctranslate2" --engine ctranslate2 --checkpoint "$CT2_MODEL" --beam-size "$beam"
    fi
done
