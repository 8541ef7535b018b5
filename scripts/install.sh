#!/usr/bin/env bash
# Install fxmatch and everything it needs on Debian/Ubuntu: system libraries (PortAudio, JACK, Qt runtime), the
# training recipe's dry material (soundfonts, Hydrogen's recorded drum kits) and the held-out recordings (Sonic Pi's
# samples and MuseScore General, never read by training; Guitarix's pedal models run by lv2apply for the
# real-distortion held-out pairs),
# a virtual environment in .venv with PyTorch and the package with every extra (live, app, train; see
# pyproject.toml). Usage: scripts/install.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

APT_PACKAGES=(
  python3-venv python3-dev
  libportaudio2 libsndfile1 jackd2
  fluidsynth fluid-soundfont-gm sox
  timgm6mb-soundfont hydrogen-drumkits musescore-general-soundfont sonic-pi-samples
  guitarix-lv2 lilv-utils
  libegl1 libgl1 libglib2.0-0 libdbus-1-3 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0 libx11-xcb1
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# PyTorch: the CPU build 2.13.0 by default; set FXMATCH_TORCH to pick another build (e.g. a CUDA one).
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" "${FXMATCH_TORCH:-torch==2.13.0}"
fi
if (( WITH_TEST )); then
  "${PIP[@]}" -e ".[test]"
else
  "${PIP[@]}" -e ".[all]"
fi
echo "fxmatch installed in $(pwd)/.venv (run: .venv/bin/fxmatch --help)"
