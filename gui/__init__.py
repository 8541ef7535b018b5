"""fxmatch's desktop app (PyQt6 + pyqtgraph) over the real-time engine of `realtime/`; `fxmatch app` starts it."""

import fxmatch  # noqa: F401 - sets the OpenMP wait policy before torch or numba loads (fxmatch.threads)
