"""The output folder, checked before any model loads; files replaced atomically.

``prepare_out_dir`` creates ``--out`` and proves it writable with a probe file, so a path that is a
file, lies under a file, or is on a read-only or full file system is one clear ``ValueError`` (exit 2)
instead of a traceback after minutes of model loading. ``replace_text`` writes a whole file through
a temporary sibling and ``os.replace``: a full disk mid-write leaves the previous content intact.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

_WHY = {
    errno.EROFS: "it is on a read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
}


def describe_os_error(exc: OSError) -> str:
    """A short reason for an ``OSError`` ("no space left on the device", ...)."""
    return _WHY.get(exc.errno, exc.strerror or str(exc))


def prepare_out_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and check a file can be written in it; returns it.

    Raises:
        ValueError: ``path`` is a file, lies under a file, or cannot be created or written,
            with the path and the reason.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is a file; expected a folder for the outputs (it is created if missing)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--out {path}: {parent} is a file, so no folder can be created under it")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".mcreid_probe_", delete=True) as probe:
            probe.write(b"x" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise ValueError(f"--out {path} is not writable: {describe_os_error(exc)}") from exc
    return path


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary sibling + ``os.replace``).

    Raises:
        OSError: writing failed; ``path`` is unchanged and no temporary file is left behind.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
