"""Errors the command line turns into one clear line and exit code 2."""


class FxmatchInputError(ValueError):
    """Bad input from the user (file, preset, option): reported as one line, exit code 2."""
