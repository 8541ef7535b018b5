"""fxmatch's desktop app (PyQt6 + pyqtgraph) over the real-time engine of `realtime/`; `fxmatch app` starts it."""
