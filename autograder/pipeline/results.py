"""Result files: result.json (our versioned schema) and gradescope.json, written atomically."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path

from autograder import __version__
from autograder.course import records
from autograder.course.model import Assignment, Course
from autograder.pipeline.feedback import gradescope_tests, points, summary_lines

GRADESCOPE_VISIBILITY = {"public": "visible", "hidden": "after_published", "after_due": "after_due_date"}


def environment_versions() -> dict[str, str]:
    versions = {"autograder": __version__, "python": platform.python_version()}
    for package in ("torch", "numpy", "hypothesis", "pytest"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def suite_hash(course: Course, assignment: Assignment) -> str:
    """Hash of everything that decides a grade besides the submission: suite, reference, config."""
    digest = _suite_digest(course, assignment)
    digest.update(json.dumps(environment_versions(), sort_keys=True).encode())
    return digest.hexdigest()


def suite_version(course: Course, assignment: Assignment) -> str:
    """The suite hash without the environment: a CPU and a GPU node (other torch builds) agree on it."""
    return _suite_digest(course, assignment).hexdigest()


def _suite_digest(course: Course, assignment: Assignment):
    digest = hashlib.sha256()
    roots = [course.suite_dir(assignment), course.solution_dir(assignment), Path(__file__).resolve().parents[1]]  # + the autograder package
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".yaml", ".json", ".txt")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(repr(assignment).encode())
    return digest


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename: a killed grader leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def gradescope_results(result: records.SubmissionResult) -> dict:
    """Gradescope's results.json: https://gradescope-autograders.readthedocs.io/en/latest/specs/

    One Gradescope test per group (with its clearest failing case and diagnosis), and the
    per-task summary first in the top-level output; the score is the exact sum."""
    tests = gradescope_tests(result, GRADESCOPE_VISIBILITY)
    output = result.reason or "\n".join([f"{points(result.score)} / {points(result.max_score)}"] + summary_lines(result))
    return {
        "score": result.score, "execution_time": int(result.duration_seconds), "output": output,
        "visibility": "visible", "stdout_visibility": "hidden", "tests": tests,
    }


def write_result(result: records.SubmissionResult, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / "gradescope.json", json.dumps(gradescope_results(result), indent=2) + "\n")
    write_atomic(directory / "result.json", result.to_json())
    return directory / "result.json"
