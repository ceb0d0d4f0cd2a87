"""The errors that mean "what you gave cannot work", as opposed to a bug.

``embedlab <stage>`` prints these as one line naming the file, row, key or value, and exits 1;
any other exception is a bug and keeps its traceback. Each also derives from the built-in type
a caller would expect (``ValueError``, ``FileNotFoundError``, ...).
"""


class EmbedlabError(Exception):
    """Base of the errors about the user's input, settings or environment."""


class SettingError(EmbedlabError, ValueError):
    """A setting (a config key, a flag) whose value cannot work; the message names it."""


class NotFound(EmbedlabError, FileNotFoundError):
    """A model, data file or tracked run that is in no place looked in; the message lists
    every place."""
