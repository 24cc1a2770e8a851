"""The `submit` verb for students: validate a working copy and pack the submission archive.

It runs the checks the grader runs first (the files are there, they compile, every required
name is defined, no forbidden import, sizes within limits) and reports each problem in one
line, so a submission is not refused after the deadline for something visible now. The
archive holds exactly the files the assignment grades, and is the same for the same files.
"""
from __future__ import annotations

import ast
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autograder.course.model import Assignment
from autograder.course.reader import load_course
from autograder.errors import ExitCode, IntakeError
from autograder.pipeline.intake import MAX_TOTAL_BYTES
from autograder.pipeline.package import default_copy, write_zip
from autograder.pipeline.scan import check_submission

MAX_SOURCE_BYTES = 1 << 20


@dataclass(frozen=True)
class SubmitReport:
    """What `submit` found: problems block the archive, warnings do not."""

    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    files: tuple[Path, ...]


def _unfinished_tasks(tree: ast.AST) -> list[str]:
    """Messages of `raise NotImplementedError("Task ...")` still in the code."""
    found = []
    for node in sorted((n for n in ast.walk(tree) if hasattr(n, "lineno")), key=lambda n: (n.lineno, n.col_offset)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and getattr(node.exc.func, "id", "") == "NotImplementedError":
            args = node.exc.args
            if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                if args[0].value not in found:
                    found.append(args[0].value)
    return found


def _collect(assignment: Assignment, source: Path, staging: Path) -> tuple[list[Path], list[str], list[str]]:
    """(files to pack, problems, warnings) for a folder, a .py or a .ipynb."""
    problems: list[str] = []
    warnings: list[str] = []
    if not source.exists():
        return [], [f"{source}: no such file or folder; give your copy of {assignment.module} or its folder"], []
    if source.is_dir():
        files = [source / name for name in assignment.files if (source / name).is_file()]
        missing = [name for name in assignment.files if not (source / name).is_file()]
        problems += [f"{source / name}: missing; the submission must contain {name}" for name in missing]
        for name in assignment.files:
            if (source / name).is_file():
                shutil.copyfile(source / name, staging / name)
    elif source.suffix == ".py":
        files = [source]
        shutil.copyfile(source, staging / assignment.module)
        if source.name != assignment.module:
            warnings.append(f"{source.name} will be graded as {assignment.module}")
    elif source.suffix == ".ipynb":
        from autograder.pipeline.notebook import module_from_notebook

        files = [source]
        try:
            module, notes = module_from_notebook(source, assignment)
        except IntakeError as error:
            return files, [str(error)], []
        (staging / assignment.module).write_text(module, encoding="utf-8")
        warnings += list(notes)
    else:
        return [], [f"{source.name}: submit a folder, your {assignment.module}, or the assignment's notebook"], []
    total = 0
    for path in files:
        size = path.stat().st_size
        total += size
        if path.suffix == ".py" and size > MAX_SOURCE_BYTES:
            problems.append(f"{path.name}: {size >> 10} KiB is over the {MAX_SOURCE_BYTES >> 10} KiB limit for a source file")
    if total > MAX_TOTAL_BYTES:
        problems.append(f"the submission is {total >> 20} MiB, over the {MAX_TOTAL_BYTES >> 20} MiB limit")
    return files, problems, warnings


def validate(assignment: Assignment, source: Path) -> SubmitReport:
    """Run the grader's first checks on `source` without running any of its code."""
    with tempfile.TemporaryDirectory(prefix="autograder-submit-") as scratch:
        staging = Path(scratch)
        files, problems, warnings = _collect(assignment, Path(source), staging)
        module = staging / assignment.module
        if module.is_file():
            for problem in check_submission(staging, assignment):
                problems.append(problem.message)
            text = module.read_text(encoding="utf-8", errors="replace")
            try:
                tree = ast.parse(text)
                compile(tree, assignment.module, "exec")
            except SyntaxError as error:
                if not any("SyntaxError" in p for p in problems):
                    problems.append(f"{assignment.module}, line {error.lineno}: {error.msg}")
            except ValueError as error:
                problems.append(f"{assignment.module}: cannot be compiled ({error})")
            else:
                warnings += [f"not done yet: {task} still raises NotImplementedError" for task in _unfinished_tasks(tree)]
    return SubmitReport(tuple(problems), tuple(warnings), tuple(files))


def archive_name(assignment: Assignment) -> str:
    return f"{assignment.id}_submission.zip"


def write_archive(assignment: Assignment, source: Path, files: tuple[Path, ...], destination: Path) -> Path:
    """A zip of the graded files: same files, same bytes."""
    entries = {}
    for path in files:
        name = assignment.module if path.suffix == ".py" and not Path(source).is_dir() else path.name
        entries[name] = (path.read_bytes(), False)
    return write_zip(destination, entries)


def main(*, assignment: str, path: str | None = None, out: str | None = None, config: str | None = None,
         stream=sys.stdout) -> int:
    """Validate and pack; exit 1 (and write nothing) when a problem would get the submission refused."""
    course = load_course(config)
    target = course.assignment(assignment)
    source = Path(path) if path else default_copy(course, target)
    report = validate(target, source)
    for warning in report.warnings:
        print(f"note: {warning}", file=stream)
    for problem in report.problems:
        print(f"problem: {problem}", file=stream)
    if report.problems:
        print(f"{target.id}: not packed: fix the {len(report.problems)} problem(s) above and run "
              f"`autograder submit {target.alias}` again", file=stream)
        return int(ExitCode.FAILED)
    destination = Path(out or ".") / archive_name(target)
    if Path(out or ".").suffix == ".zip":
        destination = Path(out)
    write_archive(target, source, report.files, destination)
    names = ", ".join(p.name for p in report.files)
    print(f"{target.id}: wrote {destination} ({names}); upload this file", file=stream)
    return 0
