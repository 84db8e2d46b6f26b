"""File output: every output path checked before any work starts, and written atomically, so a
failed or interrupted step never leaves a partial file behind and never overwrites an input.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from reid_trt.core.errors import OutputPathError, opt


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_output(path: Path | str, option: str = opt("output"), suffixes: Iterable[str] = (),
                 inputs: Iterable[Path | str | None] = (), side_files: Iterable[Path] = ()) -> Path:
    """Fails early, before any expensive work, unless `path` (and each side file written with
    it) can be created without destroying anything.

    Args:
        path: the output the user named.
        option: the option that named it, for the message.
        suffixes: the suffixes this kind of output must have (a path without one is most often a
            folder the user meant to write into).
        inputs: files this command reads; none of them may be overwritten.
        side_files: files written beside `path` (manifest, report, ...).
    """
    path = Path(path)
    wanted = tuple(suffixes)
    if wanted and not path.name.lower().endswith(wanted):
        hint = (f"; to write into the folder {path}, pass {path / ('model' + wanted[0])}"
                if not path.suffix else "")
        raise OutputPathError(f"{option} {path}: the file name must end in "
                              f"{' or '.join(wanted)}{hint}")
    readers = [Path(p) for p in inputs if p is not None]
    for target in (path, *side_files):
        what = option if target == path else f"{target.name} (written beside {option} {path})"
        if target.is_dir():
            raise OutputPathError(f"{target} is a directory; {what} needs a file name there: "
                                  f"move the directory or pass another {option}")
        clash = next((p for p in readers if _same_file(target, p)), None)
        if clash is not None:
            raise OutputPathError(f"{what} {target} would overwrite the input {clash}; pass "
                                  f"another {option}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"{parent} does not exist; create it or pass another path to {option}")
    # Try it: os.access says yes to root on read-only mounts and special filesystems.
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise OutputPathError(f"{parent} is not writable ({e.strerror}); pass another path to "
                              f"{option}") from None
    return path


def file_mode(path: Path) -> int:
    """The mode `open(path, 'w')` would give: kept if the file exists, else 0o666 less umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it onto `path` only if the block succeeds.

    mkstemp makes 0600 files; the result gets the mode a normal write would have given it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode(path))
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def unremovable(tree: Path) -> Path | None:
    """A folder inside `tree` whose entries this process may not delete, or None."""
    if not tree.is_dir() or tree.is_symlink():
        return None
    for folder, _, _ in os.walk(tree):
        if not os.access(folder, os.W_OK | os.X_OK):
            return Path(folder)
    return None


def replace_together(moves: list[tuple[Path, Path]], aside_in: Path | None = None) -> None:
    """Renames each staged `src` onto its `dst`, all or none: the files (or folders) already at
    the destinations are first moved aside beside them, and put back if any rename fails, so a
    reader sees the old set or the new one, never a mix (an OpenVINO .xml with another .bin).
    `aside_in`: where the old copies wait (default: beside each destination; a Triton
    repository wants them outside, since Triton loads every folder in it). Only the old copies'
    removal comes after the point of no return; one that cannot be removed is reported."""
    for _, dst in moves:
        blocked = unremovable(dst)
        if blocked is not None:
            raise OutputPathError(f"{dst} cannot be replaced: {blocked} does not let this user "
                                  "delete its files; fix its permissions or write elsewhere")
    aside: list[tuple[Path, Path]] = []
    placed: list[tuple[Path, Path]] = []
    try:
        for _, dst in moves:
            if dst.exists() or dst.is_symlink():
                backup = (aside_in or dst.parent) / f".{dst.name}.{os.getpid()}.old"
                os.rename(dst, backup)
                aside.append((dst, backup))
        for src, dst in moves:
            os.rename(src, dst)
            placed.append((src, dst))
    except BaseException:
        for src, dst in reversed(placed):
            os.rename(dst, src)
        for dst, backup in reversed(aside):
            os.rename(backup, dst)
        raise
    left = []
    for _, backup in aside:
        if backup.is_dir() and not backup.is_symlink():
            shutil.rmtree(backup, ignore_errors=True)
        else:
            backup.unlink(missing_ok=True)
        if backup.exists():
            left.append(str(backup))
    if left:
        raise OutputPathError(f"the new files are in place, but the old copies {', '.join(left)} "
                              "could not be removed; delete them by hand")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
