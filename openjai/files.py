"""The one way openjai writes a file: temp file in the same folder, fsync, rename, fsync folder.

A kill at any moment leaves either the old file or the new one, never a partial one.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import OutputError


def atomic_write(path: Path, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; refuses to replace an existing file unless ``force``."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a directory")
    if path.exists() and not force:
        raise OutputError(f"{path} exists: use --force to overwrite it")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
