"""Packing and unpacking what a student hands in: the working copy, the graded files, and the
deterministic zip writer that `submit` (the submission) and `export` (the Gradescope bundle) share."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from autograder.course.model import Assignment, Course

ZIP_TIME = (2025, 1, 1, 0, 0, 0)


def default_copy(course: Course, assignment: Assignment) -> Path:
    """The student's working copy: assignments/<id>/ in the course repository, else this folder."""
    release = course.release_dir(assignment)
    return Path.cwd() if not release.is_dir() and (Path.cwd() / assignment.module).is_file() else release


def graded_copy(assignment: Assignment, source: Path, target: Path) -> Path:
    """What the grader will see of `source`: for a folder, only the assignment's files (not tests, notebooks)."""
    source = Path(source)
    if not source.is_dir() or not any((source / name).is_file() for name in assignment.files):
        return source
    target.mkdir(parents=True, exist_ok=True)
    for name in assignment.files:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    return target


def write_zip(destination: Path, entries: dict[str, tuple[bytes, bool]]) -> Path:
    """Write {name: (bytes, executable)} with fixed times and modes, atomically: same entries, same bytes."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    with zipfile.ZipFile(partial, "w") as bundle:
        for name, (data, executable) in sorted(entries.items()):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, data)
    partial.replace(destination)
    return destination
