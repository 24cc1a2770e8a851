"""Remove whatever tree a worker left behind, however it was built.

A submission can leave folders without permissions, trees deeper than Python's recursion limit,
files it chmod'ed read-only, or names that are not UTF-8. `remove_tree` never raises: it walks
bottom-up without recursion, restoring permissions as it goes, and reports what (if anything)
could not be removed.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path


def _writable(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISDIR(mode):
            os.chmod(path, stat.S_IRWXU)
    except OSError:
        pass


def remove_tree(root: str | os.PathLike) -> list[str]:
    """Delete `root` and everything under it; returns the paths that could not be removed (normally none)."""
    root = os.fsencode(os.fspath(root))
    if not os.path.lexists(root):
        return []
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode):
            os.unlink(root)
            return []
    except OSError:
        pass
    left: list[str] = []
    stack = [(root, False)]
    while stack:  # iterative post-order walk: depth costs memory, never recursion
        path, visited = stack.pop()
        if visited:
            try:
                os.rmdir(path)
            except OSError as error:
                left.append(f"{os.fsdecode(path)} ({error.strerror})")
            continue
        _writable(path)
        stack.append((path, True))
        try:
            with os.scandir(path) as entries:
                children = list(entries)
        except OSError:
            continue
        for entry in children:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, False))
                else:
                    os.unlink(entry.path)
            except OSError as error:
                left.append(f"{os.fsdecode(entry.path)} ({error.strerror})")
    return left[:20]


def tree_size(root: str | os.PathLike) -> tuple[int, int]:
    """(bytes, entries) under `root`, for tests and logs."""
    total = count = 0
    for directory, folders, files in os.walk(root):
        count += len(folders) + len(files)
        for name in files:
            try:
                total += os.lstat(Path(directory) / name).st_size
            except OSError:
                pass
    return total, count
