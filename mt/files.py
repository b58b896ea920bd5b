"""Output files written whole or not at all, and never over one of the inputs.

``atomic_output`` writes into a temporary file beside the destination and renames it into place
when the block ends without an error, so a run that fails half-way (a full disk, a bad line,
Ctrl-C) leaves the destination as it was. It refuses a destination that is, or resolves to
(through a symlink or a hard link), one of the files being read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import ContextManager, Iterable, Iterator, TextIO

from mt.errors import OutputError

# Errors of the disk rather than of the program: reported as one message naming the file.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM}


def describe_write_error(error: OSError, path: Path) -> str:
    """One sentence for an ``OSError`` met writing ``path`` (e.g. "No space left on device")."""
    return f"cannot write {path}: {error.strerror or error}"


def _same_file(path: Path, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:  # either does not exist (yet)
        return False


def check_output(path: Path, inputs: Iterable[Path] = ()) -> None:
    """Raise ``OutputError`` if ``path`` cannot be a new output: its directory is missing or not a
    directory, it is a directory, or it is (or links to, or is a hard link of) one of ``inputs``."""
    path = Path(path)
    parent = path.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: the directory {path.parent} does not exist; create it first")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory; give a file name")
    for source in inputs:
        if _same_file(path, Path(source)):
            raise OutputError(f"{path} is also an input ({source}): writing it would destroy what is being read; "
                              "choose another output file")


@contextlib.contextmanager
def atomic_output(path: Path, inputs: Iterable[Path] = ()) -> Iterator[TextIO]:
    """A UTF-8 text handle whose content replaces ``path`` when the block succeeds.

    The handle writes to a hidden temporary file in ``path``'s directory, which is flushed,
    fsynced and renamed over ``path`` at the end (a symlink ``path`` keeps pointing at the file it
    names, which is replaced); on an error it is deleted and ``path`` is untouched. A ``path``
    that exists and is no regular file (``/dev/null``, a pipe) is written directly. Raises
    ``OutputError`` (see ``check_output``), also for disk errors while writing (``WRITE_ERRNOS``).
    """
    path = Path(path)
    check_output(path, inputs)
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        try:
            with path.open("w", encoding="utf-8") as handle:
                yield handle
        except OSError as error:
            if error.errno not in WRITE_ERRNOS:
                raise
            raise OutputError(describe_write_error(error, path)) from None
        return
    target = path.resolve()
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise OutputError(describe_write_error(error, path)) from None
    try:
        with open(descriptor, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~umask)
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        if error.errno not in WRITE_ERRNOS:
            raise
        raise OutputError(f"{describe_write_error(error, path)}; {path} was left as it was") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def text_output(path: Path | None, inputs: Iterable[Path] = ()) -> ContextManager[TextIO]:
    """Where a command's text goes: ``path`` written whole and never over one of ``inputs``
    (``atomic_output``), else stdout."""
    return atomic_output(path, inputs) if path else contextlib.nullcontext(sys.stdout)
