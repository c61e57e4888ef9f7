"""Which failures are the user's to fix, and the one line `sed-uda` prints for each.

A `UserError` is a problem with the user's input, data, disk or machine (a missing corpus, a broken
cache, a full disk, a config that needs a GPU); the command line shows its message without a traceback.
Everything else is a bug and keeps its traceback, so it can be reported and fixed.
"""

from __future__ import annotations

import errno
from pathlib import Path


class UserError(Exception):
    """A problem the user can fix; the message names the file or option, the problem and the fix."""


class BadArgument(UserError, ValueError):
    """An argument outside its allowed values (also a ValueError, for callers from Python)."""


class CheckpointMismatch(UserError):
    """A checkpoint that does not fit the configuration or the request; the message says how."""


class OutputExists(UserError, FileExistsError):
    """An output folder already holds something that writing there would overwrite or mix with."""


_OS_FIXES: dict[int, str] = {
    errno.ENOSPC: "the disk is full: free some space or write to another disk",
    errno.EDQUOT: "the disk quota is exhausted: free some space or write to another disk",
    errno.EACCES: "permission denied: choose a folder you can write to, or fix its permissions",
    errno.EPERM: "permission denied: choose a folder you can write to, or fix its permissions",
    errno.EROFS: "the file system is read-only: choose a folder on a writable disk",
    errno.ENOTDIR: "a part of this path is a file, not a folder: choose another path or move the file",
    errno.EISDIR: "this path is a folder, not a file: choose a file name",
    errno.EEXIST: "already exists and is in the way: choose another path or move it",
    errno.ENOENT: "no such file or folder: check the path",
}
"""errno -> what it means for the user and what to do, for file-system errors that are not bugs."""


def os_error_message(error: OSError) -> str | None:
    """One line for a file-system error the user can fix (full disk, permissions, ...), else None."""
    fix = _OS_FIXES.get(error.errno or -1)
    if fix is None:
        return None
    where = error.filename if error.filename is not None else "a file"
    return f"{Path(str(where))}: {fix}"


def user_message(error: BaseException) -> str | None:
    """The one line to show for a failure the user can fix, or None for a bug (which keeps its traceback).

    User errors are `UserError`s, file-system errors the user can act on (full disk, permissions, a file
    where a folder belongs), and FileNotFoundError / FileExistsError raised with a message by this project.
    """
    if isinstance(error, UserError):
        return str(error)
    if isinstance(error, OSError):
        if error.errno is None and isinstance(error, FileNotFoundError | FileExistsError):
            return str(error)
        return os_error_message(error)
    return None
