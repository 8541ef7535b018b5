"""Speed and quality benchmarks (`fxmatch bench NAME`), JSON output."""

import fxmatch  # noqa: F401 - sets the OpenMP wait policy before torch or numba loads (fxmatch.threads)
