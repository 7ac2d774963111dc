"""Errors that are the user's to fix: reported as one line on stderr, exit code 2."""


class UserError(Exception):
    """A bad configuration or input that the user must fix; never shown as a traceback."""


class ImageError(Exception):
    """One image cannot be processed; it becomes a `failed` row, the run goes on."""
