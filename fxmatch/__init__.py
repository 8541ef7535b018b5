"""fxmatch: hear a processed sound, name the effect chain and its settings, play through it live."""

from fxmatch.threads import prefer_passive_waiting

__version__ = "0.1.0"

prefer_passive_waiting()  # before anything loads OpenMP (fxmatch.threads says why)
