"""ONNX export with embedded metadata and parity checks (`fxmatch export CKPT OUT.onnx`).

`export.onnx_export` holds the exporter (it imports torch and `training`); the runtime that reads the exported
files is `fxmatch.inference` (no torch needed there). Nothing is imported here, so that listing the `fxmatch`
subcommands stays cheap.
"""

import fxmatch  # noqa: F401 - sets the OpenMP wait policy before torch or numba loads (fxmatch.threads)
