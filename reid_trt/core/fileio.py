"""File output: every output path checked before any work starts, and written atomically, so a
failed or interrupted step never leaves a partial file behind and never overwrites an input. And
the one bounded reader of the files the product reads for itself (read_regular).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from reid_trt.core.defaults import CACHE_ENV
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
        if _locked(target):
            raise OutputPathError(f"{what} {target} is immutable or append-only and cannot be "
                                  f"replaced; clear the flag (chattr -i/-a) or pass another "
                                  f"{option}")
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


# Linux inode flags (FS_IOC_GETFLAGS): an immutable or append-only file cannot be renamed or
# deleted, even by root, and os.access does not tell.
_FS_IOC_GETFLAGS = 0x80086601
_LOCKED_FLAGS = 0x10 | 0x20  # FS_IMMUTABLE_FL, FS_APPEND_FL


def _locked(path: Path) -> bool:
    """Whether `path` carries the immutable or append-only flag (False where flags cannot be
    read: another OS, a filesystem without them)."""
    try:
        import array
        import fcntl

        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except (ImportError, OSError):
        return False
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        return bool(flags[0] & _LOCKED_FLAGS)
    except OSError:
        return False
    finally:
        os.close(fd)


def unremovable(tree: Path) -> Path | None:
    """A file or folder in `tree` (or `tree` itself) that this process cannot move or delete:
    immutable or append-only, or inside a folder that does not let it delete entries; None if
    the whole tree can go."""
    if not (tree.exists() or tree.is_symlink()) or tree.is_symlink():
        return None
    if _locked(tree):
        return tree
    if not tree.is_dir():
        return None
    for folder, dirs, files in os.walk(tree):
        if not os.access(folder, os.W_OK | os.X_OK):
            return Path(folder)
        for name in dirs + files:
            if _locked(Path(folder) / name):
                return Path(folder) / name
    return None


def replace_together(moves: list[tuple[Path, Path]], aside_in: Path | None = None) -> None:
    """Renames each staged `src` onto its `dst`, all or none: the files (or folders) already at
    the destinations are first moved aside beside them, and put back if any rename fails, so a
    reader sees the old set or the new one, never a mix (an OpenVINO .xml with another .bin).
    `aside_in`: where the old copies wait (default: beside each destination; a Triton
    repository wants them outside, since Triton loads every folder in it). Everything that must
    move or go is checked first, so the old copies' removal, after the point of no return, does
    not fail on what could be known; a rename that fails anyway is undone and reported in one
    line with nothing changed."""
    for _, dst in moves:
        blocked = unremovable(dst)
        if blocked is not None:
            raise OutputPathError(f"{dst} cannot be replaced: {blocked} cannot be moved or "
                                  "deleted by this user (permissions, or an immutable or "
                                  "append-only flag); fix that or write elsewhere; nothing was "
                                  "changed")
    aside: list[tuple[Path, Path]] = []
    placed: list[tuple[Path, Path]] = []
    current = moves[0][1] if moves else None
    try:
        for _, current in moves:
            if current.exists() or current.is_symlink():
                backup = (aside_in or current.parent) / f".{current.name}.{os.getpid()}.old"
                os.rename(current, backup)
                aside.append((current, backup))
        for src, current in moves:
            os.rename(src, current)
            placed.append((src, current))
    except BaseException as e:
        for src, dst in reversed(placed):
            os.rename(dst, src)
        for dst, backup in reversed(aside):
            os.rename(backup, dst)
        if isinstance(e, OSError):
            raise OutputPathError(f"{current} cannot be replaced ({e.strerror}); nothing was "
                                  "changed") from None
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


@contextlib.contextmanager
def atomic_paths(*paths: Path) -> Iterator[tuple[Path, ...]]:
    """`atomic_path` for files that belong together (an engine and its manifest, an INT8 graph
    with its cache and report): temporary paths beside each, put in place all or none by
    `replace_together` only if the block succeeds."""
    staged = []
    try:
        for path in map(Path, paths):
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                       dir=path.parent or ".")
            os.close(fd)
            staged.append(Path(tmp))
        yield tuple(staged)
        for tmp, path in zip(staged, paths, strict=True):
            os.chmod(tmp, file_mode(Path(path)))
        replace_together([(tmp, Path(path)) for tmp, path in zip(staged, paths, strict=True)])
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_regular(path: Path | str, max_bytes: int) -> bytes:
    """The bytes of `path`, read only if it is a regular file of at most `max_bytes`: opened
    without blocking and checked on the open descriptor, so a named pipe, a device (a link to
    /dev/zero) or a folder is never read, and a large file never read whole. OSError where it
    cannot be opened; ValueError, saying why, where it is not such a file."""
    limit = f"{max_bytes >> 20} MiB" if max_bytes >= 1 << 20 else f"{max_bytes >> 10} KiB"
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:  # checked on the descriptor: Python's file objects refuse a folder with an OSError
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > max_bytes:
            raise ValueError(f"larger than {limit}")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while read
        raise ValueError(f"larger than {limit}")
    return data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """reid-trt's cache folder: $REID_TRT_CACHE_DIR, else $XDG_CACHE_HOME/reid-trt or
    ~/.cache/reid-trt."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reid-trt"
