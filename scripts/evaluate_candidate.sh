#!/usr/bin/env bash
# Score a trained checkpoint as a candidate for the shipped model, the way the card's stages were scored:
#   scripts/evaluate_candidate.sh CHECKPOINT OUT VERSION            export (calibrated), sweep the presence threshold
#                                                                   on OUT/val-300 (made from the checkpoint's data)
#   scripts/evaluate_candidate.sh CHECKPOINT OUT VERSION THRESHOLD  export with that rule and evaluate on every
#                                                                   held-out set under runs/ (real-sets/*, sets/*) and
#                                                                   blind on the real pedals (runs/real-distorted)
# The validation set (seed 991) is neither the calibration's examples nor any reported set. Logs and reports go
# under OUT (made if missing). Compare with the shipped model's reports in models/fxmatch-default.eval/.
set -euo pipefail
cd "$(dirname "$0")/.."
if (( $# < 3 )); then
  echo "usage: scripts/evaluate_candidate.sh CHECKPOINT OUT VERSION [THRESHOLD]" >&2
  exit 2
fi
CKPT=$1 OUT=$2 VERSION=$3 THRESHOLD=${4:-}
[[ -f "$CKPT" ]] || { echo "error: $CKPT: no such checkpoint" >&2; exit 2; }
mkdir -p "$OUT"
export NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
FX=.venv/bin/fxmatch PY=.venv/bin/python
if [[ -z "$THRESHOLD" ]]; then
  [[ -d "$OUT/val-300" ]] || $PY -m training.make_set "$OUT/val-300" --model "$CKPT" --n 300 --seed 991
  $FX export "$CKPT" "$OUT/candidate-cal.onnx" --model-version "$VERSION" --calibrate heldout:300 --force --json \
    > "$OUT/export-cal.json"
  $PY scripts/choose_threshold.py "$OUT/candidate-cal.onnx" "$OUT/val-300" \
    --thresholds none,0.5,0.6,0.7,0.75,0.8,0.85,0.9 -o "$OUT/threshold-sweep-val.json" | tee "$OUT/threshold-sweep.md"
  echo "now: scripts/evaluate_candidate.sh $CKPT $OUT $VERSION THRESHOLD"
  exit 0
fi
$FX export "$CKPT" "$OUT/candidate.onnx" --model-version "$VERSION" --calibrate heldout:300 \
  --presence-threshold "$THRESHOLD" --force --json > "$OUT/export.json"
for set in runs/real-sets/unprocessed runs/real-sets/pedalboard runs/real-sets/sox runs/sets/musescore-300 \
           runs/sets/v6-heldout-300 runs/sets/midi-300 runs/sets/sox-300; do
  if [[ ! -d "$set" ]]; then
    echo "skipped $set (not made on this machine: docs/training.md says how)"
    continue
  fi
  name=$(basename "$set")
  mkdir -p "$OUT/eval/$name"
  $FX evaluate "$OUT/candidate.onnx" "$set" -o "$OUT/eval/$name" --no-oracle --no-progress > "$OUT/eval/$name.log"
  echo "$set: $(sed -n 5p "$OUT/eval/$name/eval.md")"  # the candidate's row
done
if [[ -d runs/real-distorted ]]; then
  $PY scripts/blind_real_pedals.py "$OUT/candidate.onnx" runs/real-distorted > "$OUT/blind-real-pedals.txt"
  tail -1 "$OUT/blind-real-pedals.txt"
fi
