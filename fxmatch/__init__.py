"""fxmatch: hear a processed sound, name the effect chain and its settings, play through it live."""

__version__ = "0.1.0"
