"""Intake: accept a folder, a single .py, a .zip/.tar.gz or a .ipynb; stage the module.

Every refusal is an IntakeError with one sentence naming the problem and the file: path
traversal, links, devices, archives over the size limit, no module or several candidates.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable

from autograder.course.model import Assignment
from autograder.course.records import StagedSubmission
from autograder.errors import IntakeError

MAX_TOTAL_BYTES = 20 << 20
MAX_FILES = 500
SKIPPED_PARTS = {"__pycache__", ".git", ".ipynb_checkpoints", "__MACOSX", ".DS_Store"}
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


def submission_name(path: Path) -> str:
    """The student id: the folder or file name without its archive suffix."""
    name = path.name
    for suffix in ARCHIVE_SUFFIXES + (".ipynb", ".py"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def _safe_member(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise IntakeError(f"{archive.name}: refused: the archive member {name!r} points outside the archive")
    return path


@dataclass(frozen=True)
class _Member:
    """One archive member as intake judges it, whatever the archive format."""

    name: str
    size: int
    kind: str                           # file | dir | link | other
    open: Callable[[], BinaryIO]
    link: str = "a link"                # how a refusal names this format's links


def _unpack(archive: Path, target: Path, members: list[_Member]) -> None:
    """The refusals every archive format shares, then the regular files written under `target`."""
    if len(members) > MAX_FILES:
        raise IntakeError(f"{archive.name}: refused: more than {MAX_FILES} files")
    if sum(m.size for m in members) > MAX_TOTAL_BYTES:
        raise IntakeError(f"{archive.name}: refused: unpacks to more than {MAX_TOTAL_BYTES >> 20} MiB")
    for member in members:
        relative = _safe_member(member.name, archive)
        if member.kind == "link":
            raise IntakeError(f"{archive.name}: refused: {member.name!r} is {member.link}")
        if member.kind == "dir" or any(part in SKIPPED_PARTS for part in relative.parts):
            continue
        if member.kind != "file":
            raise IntakeError(f"{archive.name}: refused: {member.name!r} is not a regular file")
        destination = target.joinpath(*relative.parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with member.open() as source, destination.open("wb") as sink:
            shutil.copyfileobj(source, sink)


def _extract_zip(archive: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            _unpack(archive, target, [
                _Member(m.filename, m.file_size,
                        "link" if stat.S_ISLNK(m.external_attr >> 16) else "dir" if m.is_dir() else "file",
                        lambda m=m: bundle.open(m), link="a symbolic link")
                for m in bundle.infolist()])
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise IntakeError(f"{archive.name}: not a readable zip archive ({error})") from None


def _extract_tar(archive: Path, target: Path) -> None:
    try:
        with tarfile.open(archive) as bundle:
            _unpack(archive, target, [
                _Member(m.name, m.size,
                        "link" if m.issym() or m.islnk() else "dir" if m.isdir() else "file" if m.isfile() else "other",
                        lambda m=m: bundle.extractfile(m))
                for m in bundle.getmembers()])
    except (tarfile.TarError, OSError, EOFError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(":")
        raise IntakeError(f"{archive.name}: not a readable tar archive ({first_line})") from None


def _copy_tree(source: Path, target: Path) -> None:
    """Copy regular files only; links and special files are refused by name."""
    count = total = 0
    for root, dirs, files in os.walk(source, followlinks=False):
        dirs[:] = [d for d in dirs if d not in SKIPPED_PARTS]
        for name in dirs:
            if os.path.islink(os.path.join(root, name)):
                raise IntakeError(f"{source.name}: refused: {os.path.relpath(os.path.join(root, name), source)} is a symbolic link")
        for name in files:
            if name in SKIPPED_PARTS:
                continue
            path = Path(root, name)
            relative = path.relative_to(source)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                raise IntakeError(f"{source.name}: refused: {relative} is a symbolic link")
            if not stat.S_ISREG(info.st_mode):
                raise IntakeError(f"{source.name}: refused: {relative} is not a regular file")
            count += 1
            total += info.st_size
            if count > MAX_FILES:
                raise IntakeError(f"{source.name}: refused: more than {MAX_FILES} files")
            if total > MAX_TOTAL_BYTES:
                raise IntakeError(f"{source.name}: refused: more than {MAX_TOTAL_BYTES >> 20} MiB")
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def _locate_module(unpacked: Path, assignment: Assignment, label: str) -> tuple[Path, tuple[str, ...]]:
    """The folder holding <module>.py (at the top or one folder down), converting a notebook."""
    module = assignment.module
    if (unpacked / module).is_file():
        return unpacked, ()
    candidates = sorted(p for p in unpacked.rglob(module) if p.is_file())
    if len(candidates) == 1:
        return candidates[0].parent, ()
    if len(candidates) > 1:
        names = ", ".join(str(p.relative_to(unpacked)) for p in candidates[:4])
        raise IntakeError(f"{label}: several files are named {module} ({names}); submit exactly one")
    notebooks = sorted(unpacked.rglob("*.ipynb"))
    if len(notebooks) == 1:
        from autograder.pipeline.notebook import module_from_notebook

        source, notes = module_from_notebook(notebooks[0], assignment)
        (unpacked / module).write_text(source, encoding="utf-8")
        return unpacked, notes
    python_files = [p for p in unpacked.rglob("*.py") if p.is_file()]
    if len(python_files) == 1:
        renamed = unpacked / module
        python_files[0].replace(renamed)
        return unpacked, (f"your file {python_files[0].name} was graded as {module}",)
    raise IntakeError(f"{label}: no {module} found; the submission must contain the file {module}")


def _drop_release_files(directory: Path, assignment: Assignment) -> None:
    """A whole release folder was submitted: its public tests and config are ours, not the student's code."""
    if (directory / "grading.yaml").is_file() and (directory / "tests" / "grading" / assignment.id).is_dir():
        shutil.rmtree(directory / "tests" / "grading" / assignment.id)
        (directory / "grading.yaml").unlink()


def _hash_tree(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def stage_submission(source: Path, assignment: Assignment, staging: Path) -> StagedSubmission:
    """Copy the submission at `source` into `staging`/<name>/ and find its module."""
    source = Path(source)
    name = submission_name(source)
    label = source.name
    if source.is_symlink():
        raise IntakeError(f"{label}: refused: the submission is a symbolic link")
    if not source.exists():
        raise IntakeError(f"{source}: no such file or folder")
    unpacked = staging / "unpacked"
    unpacked.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        _copy_tree(source, unpacked)
    elif source.name.endswith(".zip"):
        _extract_zip(source, unpacked)
    elif source.name.endswith((".tar.gz", ".tgz", ".tar")):
        _extract_tar(source, unpacked)
    elif source.suffix in (".py", ".ipynb"):
        if source.stat().st_size > MAX_TOTAL_BYTES:
            raise IntakeError(f"{label}: refused: larger than {MAX_TOTAL_BYTES >> 20} MiB")
        shutil.copyfile(source, unpacked / (assignment.module if source.suffix == ".py" else source.name))
    else:
        raise IntakeError(f"{label}: not a submission: give a folder, a .py, a .ipynb, a .zip or a .tar.gz")
    directory, notes = _locate_module(unpacked, assignment, label)
    _drop_release_files(directory, assignment)
    return StagedSubmission(
        name=name, source=str(source), directory=directory, module_file=directory / assignment.module,
        sha256=_hash_tree(directory), notes=notes,
    )
