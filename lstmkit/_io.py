"""Writing files so that a crash never leaves a half-written one behind.

Every file lstmkit writes (models, checkpoints, exports, forecasts, plots) goes through
:func:`atomic_path`: the content is written to a temporary file in the target's directory, flushed
to disk, and renamed over the target only once complete; on any error the temporary file is
removed and the previous file, if any, is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path to write; on success it replaces ``path``, else it is removed.

    The file gets the permissions a plain ``open(path, "w")`` would give (``0o666`` less the
    umask), not the private ``0o600`` of a temporary file.

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(target) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("done")
    >>> open(target).read()
    'done'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the content reaches the disk before the rename
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
