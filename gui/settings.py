"""Settings remembered between runs (QSettings): an INI file at a given path, or the platform's default place."""

from __future__ import annotations

import os
from pathlib import Path

from PyQt6 import QtCore

#: environment variable naming the settings file (tests and portable installs)
SETTINGS_ENV = "FXMATCH_SETTINGS"


class AppSettings:
    """Typed access to the app's QSettings; `path` (or $FXMATCH_SETTINGS) selects an INI file.

    `read_only` reads the settings and never writes them (`fxmatch app --screenshot`): `set` and `sync` do nothing.
    """

    def __init__(self, path: str | os.PathLike | None = None, read_only: bool = False):
        self.read_only = bool(read_only)
        path = path or os.environ.get(SETTINGS_ENV) or None
        if path:
            if not self.read_only:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.qsettings = QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat)
        else:
            self.qsettings = QtCore.QSettings(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                                              "fxmatch", "fxmatch")

    @property
    def path(self) -> str:
        return self.qsettings.fileName()

    def set(self, key: str, value: object) -> None:
        """Remember `value` under `key` (nothing when read-only)."""
        if not self.read_only:
            self.qsettings.setValue(key, value)

    def get_str(self, key: str, default: str = "") -> str:
        v = self.qsettings.value(key, default)
        return default if v is None else str(v)

    def get_int(self, key: str, default: int = 0) -> int:
        try:
            return int(self.qsettings.value(key, default))
        except (TypeError, ValueError):
            return default

    def get_bytes(self, key: str) -> QtCore.QByteArray | None:
        v = self.qsettings.value(key)
        return v if isinstance(v, QtCore.QByteArray) else None

    def sync(self) -> None:
        """Write to disk now (QSettings writes INI files atomically); nothing when read-only."""
        if not self.read_only:
            self.qsettings.sync()
