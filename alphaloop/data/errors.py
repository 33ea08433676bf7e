"""The one exception every data stage raises: its message is shown to the user as one `error:` line."""


class DataError(Exception):
    """A fatal data problem; its message is shown to the user as one line."""
