"""The errors that mean "what you gave cannot work", as opposed to a bug.

``embedlab <stage>`` prints these as one line naming the file, row, key or value, and exits 1;
any other exception is a bug and keeps its traceback. Each also derives from the built-in type
a caller would expect (``ValueError``, ``FileNotFoundError``, ...).
"""

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class EmbedlabError(Exception):
    """Base of the errors about the user's input, settings or environment."""


class SettingError(EmbedlabError, ValueError):
    """A setting (a config key, a flag) whose value cannot work; the message names it."""


class NotFound(EmbedlabError, FileNotFoundError):
    """A model, data file or tracked run that is in no place looked in; the message lists
    every place."""


class DiskFull(EmbedlabError, OSError):
    """No space was left where a stage writes; the message names the folder and how a rerun
    resumes."""


# torch's checkpoint writer reports a full disk only as "enforce fail at inline_container.cc";
# below this much free space such an error is taken for one
_NEARLY_FULL = 64 << 20


def _is_disk_full(err: BaseException, folder: Path) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if "No space left" in str(err):  # polars, and libraries that wrap the OSError's text
        return True
    try:
        return shutil.disk_usage(folder).free < _NEARLY_FULL
    except OSError:
        return False


@contextmanager
def naming_a_full_disk(folder: str | Path, what: str, resume: str) -> Iterator[None]:
    """Turn a write that failed for want of space into one ``DiskFull`` line: the folder, what
    was being written and how a rerun resumes (``resume``); other failures pass unchanged.

    Example::

        with naming_a_full_disk(folder, "checkpoint 40", "training resumes from the last one"):
            torch.save(state, folder / "state.pt")
    """
    try:
        yield
    except Exception as err:
        folder = Path(folder)
        if not _is_disk_full(err, folder):
            raise
        try:
            free = f"{shutil.disk_usage(folder).free / 2**20:.0f} MiB free"
        except OSError:
            free = "free space unknown"
        raise DiskFull(
            f"{folder}: no space left on the device while writing {what} ({free}); free some "
            f"space and rerun: {resume}"
        ) from None
