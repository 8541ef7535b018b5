#!/usr/bin/env bash
# Install fxmatch with its test tools and run the whole default test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
