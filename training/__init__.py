"""Training of the fxmatch estimator: dry sources, target rendering, encoder, winner-takes-all trainer."""

import fxmatch  # noqa: F401 - sets the OpenMP wait policy before torch or numba loads (fxmatch.threads)
