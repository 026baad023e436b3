"""Files that hold secrets are born private: created 0600, never chmod-ed down afterwards.

``path.write_text(...)`` followed by ``os.chmod(path, 0o600)`` leaves a window in which the file
exists with the umask's mode (usually 0644) — long enough for another local user to open it and
keep the descriptor. Agent configs (the gateway password is in the MQTT URL), broker password
files, stored credentials and env files are therefore written here: ``os.open`` with
``O_CREAT | O_EXCL`` and the final mode on a temporary name in the same folder, then an atomic
``os.replace`` (a reader sees the old file or the new one, never half a file, and an existing
file with a wider mode is replaced rather than reused).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE = 0o600


def write_private(path: Path, data: str | bytes, mode: int = PRIVATE) -> Path:
    """Atomically write ``data`` (str as UTF-8) to ``path`` as a new file created with ``mode``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover of a crashed writer with this pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return path
