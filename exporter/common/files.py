"""Output files appear whole or not at all: a run that fails or is interrupted leaves none half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Collection
from pathlib import Path

from exporter.common.errors import ExportError


def check_writable(path: Path) -> None:
    """Refuse, before any work is done, an output that cannot be written, with the real reason.

    The folders ``path`` needs are made only when the files are written, so the test is on the nearest
    folder that exists: it must be a folder, and a file must be creatable in it (a probe file, removed at
    once: permissions, read-only mounts and special file systems such as /proc all answer that).
    """
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ExportError(f"{path}: cannot write there: {existing} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".lamarr-export-probe-"):
            pass
    except OSError as err:
        reason = err.strerror or str(err)
        raise ExportError(f"{path}: cannot create files in {existing} (the file system refuses: {reason})") from None


def refuse_folders(paths: Collection[Path]) -> None:
    """Refuse a path that is a folder, or that another of ``paths`` needs as its folder: before any work is
    done (a run's outputs) and again before anything is written."""
    folders = {parent.resolve() for path in paths for parent in path.parents}
    for path in paths:
        if path.is_dir() or path.resolve() in folders:
            raise ExportError(f"{path}: is a folder (or must become one), cannot write the file there")


def write_atomically(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary name first, then rename them all into place.

    A path that is a folder, or that another path needs as its folder, is refused before anything is
    written; any other failure to write is the user's to fix too (permissions, a full disk).
    """
    refuse_folders(files.keys())
    staged: list[tuple[Path, Path]] = []
    path = next(iter(files), Path("output"))
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            staged.append((tmp, path))
            tmp.write_bytes(data)
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as err:  # named by the path the user asked for, never by the temporary name
        raise ExportError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):  # never written (e.g. its name was too long), or renamed
                tmp.unlink()
