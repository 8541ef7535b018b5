"""The torch-free paths: effect specs, presets, the inference runtime and the real-time audio process."""

from __future__ import annotations

import subprocess
import sys

# What the audio process does on a chain change: it validates the chain with the preset's rules (the first call
# imports fxmatch.preset, hence the effect specs) and builds the pedalboard objects. `realtime.engine` is the audio
# process's module (it spawns with multiprocessing's 'spawn': a fresh interpreter that imports only it).
_AUDIO_PROCESS = """
import sys
import fxmatch.preset, fxmatch.inference
import realtime.engine
from realtime.streaming_chain import StreamingChain, validate_chain
from fxmatch.effects import KNOWN_EFFECTS, get_spec
from fxmatch.inference import ModelInfo
chain = validate_chain([(name, get_spec(name).defaults()) for name in ("Compressor", "Reverb", "Gain")])
StreamingChain(chain, 48000, 256)
for name in KNOWN_EFFECTS:
    spec = get_spec(name)
    spec.normalise(spec.defaults())
    [p.position(p.default_value) for p in spec.params]
print(sorted(m for m in ("torch", "numba") if m in sys.modules))
"""


def test_presets_inference_and_the_audio_process_import_neither_torch_nor_numba():
    out = subprocess.run([sys.executable, "-c", _AUDIO_PROCESS], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stderr


def test_a_twin_name_read_through_its_effect_package_imports_the_twin():
    code = ("import sys; from fxmatch.effects import compressor; assert 'torch' not in sys.modules; "
            "compressor.process; print('torch' in sys.modules, 'fxmatch.effects.compressor.twin' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "True True", out.stderr
