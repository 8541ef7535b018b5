#!/usr/bin/env bash
# Start a training run detached from the terminal: scripts/train-bg.sh CONFIG OUT [fxmatch train options...]
# Resumes OUT's checkpoint when there is one. Logs to OUT/train.out; the process id is in OUT/train.pid.
# Follow it with: .venv/bin/fxmatch train --status OUT
set -euo pipefail
cd "$(dirname "$0")/.."
if (( $# < 2 )); then
  echo "usage: scripts/train-bg.sh CONFIG OUT [fxmatch train options...]" >&2
  exit 2
fi
CONFIG=$1 OUT=$2
shift 2
mkdir -p "$OUT"
if [[ -f "$OUT/train.pid" ]] && kill -0 "$(cat "$OUT/train.pid")" 2>/dev/null; then
  echo "a run is already training into $OUT (pid $(cat "$OUT/train.pid"))" >&2
  exit 2
fi
RESUME=()
[[ -f "$OUT/checkpoint.pt" ]] && RESUME=(--resume)
# the twins' numba kernels spin-wait when their threads lack a core: one thread each per process
export NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
nohup .venv/bin/fxmatch train "$CONFIG" --out "$OUT" "${RESUME[@]}" "$@" >>"$OUT/train.out" 2>&1 < /dev/null &
echo $! > "$OUT/train.pid"
echo "training $CONFIG into $OUT (pid $!, log $OUT/train.out)"
