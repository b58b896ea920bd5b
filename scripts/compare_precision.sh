#!/usr/bin/env bash
# Does bf16 autocast train as well as fp32? The Multi30k en->de Transformer config trained twice
# for the same number of updates, --precision fp32 and --precision bf16, side by side on one
# thread each; then dev BLEU (greedy, every VALIDATE updates) of both runs and the difference.
#   DATA=../shared/data STEPS=1000 VALIDATE=250 scripts/compare_precision.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
data="${DATA:-$root/../shared/data}/multi30k"
steps="${STEPS:-1000}"
for precision in fp32 bf16; do
  run="checkpoints/m30k-precision-$precision"
  if [ ! -d "$run/last" ]; then
    mt train --config scripts/configs/multi30k-en-de.yaml --train "$data/train" --dev "$data/val" \
      --precision "$precision" --threads 1 --max-steps "$steps" --max-time 24h \
      --validate-every "${VALIDATE:-250}" --output "$run" > "$run.log" 2>&1 &
  fi
done
wait
python - <<'EOF'
from mt.plot import read_train_log

def dev_bleu(precision):
    events = read_train_log(f"checkpoints/m30k-precision-{precision}")
    return {e["step"]: e["dev_bleu"] for e in events if e["event"] == "validation"}

fp32, bf16 = dev_bleu("fp32"), dev_bleu("bf16")
print("| updates | dev BLEU fp32 | dev BLEU bf16 | bf16 - fp32 |\n|---:|---:|---:|---:|")
for step in sorted(fp32.keys() & bf16.keys()):
    print(f"| {step:,} | {fp32[step]:.2f} | {bf16[step]:.2f} | {bf16[step] - fp32[step]:+.2f} |")
EOF
