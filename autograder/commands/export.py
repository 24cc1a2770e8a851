"""The `export gradescope` verb: an autograder .zip in Gradescope's documented layout.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once when it builds the
image, then runs run_autograder per submission: it must grade /autograder/submission and
write /autograder/results/results.json. The bundle carries this package, grading.yaml, the
suite and the reference, and grades through the same pipeline (and sandbox) as `grade`.
`python -m autograder.commands.export ROOT ASSIGNMENT` is what run_autograder calls; ROOT is
/autograder unless $AUTOGRADER_ROOT says otherwise (so a test can unpack it anywhere).
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from autograder.course.model import Assignment, Course
from autograder.course.reader import SUITE_FILE, load_course
from autograder.errors import AutograderError
from autograder.pipeline.package import write_zip

SOURCE_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".txt", ".md", ".toml", ".cfg")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 22.04 or
# newer): Python 3.11+ and the pinned grading environment.
set -euo pipefail
cd "$(dirname "$0")"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 python3.11-venv >/dev/null \\
  || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
PYTHON=$(command -v python3.11 || command -v python3)
"$PYTHON" -m venv /autograder/venv
/autograder/venv/bin/pip install -q --upgrade pip
/autograder/venv/bin/pip install -q --extra-index-url https://download.pytorch.org/whl/cpu .
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade $ROOT/submission, write
# $ROOT/results/results.json. AUTOGRADER_ROOT and AUTOGRADER_PYTHON redirect it for tests.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
mkdir -p "$ROOT/results"
cd "$ROOT/source"
export PYTHONPATH="$ROOT/source" AUTOGRADER_CONFIG="$ROOT/source/grading.yaml"
exec "$PYTHON" -m autograder.commands.export "$ROOT" {assignment}
"""


def _tree(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and ".ipynb_checkpoints" not in p.parts and p.suffix in SOURCE_SUFFIXES)


def bundle_files(course: Course, assignment: Assignment) -> dict[str, tuple[bytes, bool]]:
    """Zip entry name -> (bytes, executable): scripts, package, config, suite, reference."""
    for folder, what in ((course.suite_dir(assignment), "grading suite"), (course.solution_dir(assignment), "reference solution")):
        if not folder.is_dir():
            raise AutograderError(f"{folder}: no {what} for {assignment.id}; the Gradescope bundle needs it")
    package = Path(__file__).resolve().parents[1]   # the autograder package
    files: dict[str, tuple[bytes, bool]] = {
        "setup.sh": (SETUP_SH.encode(), True),
        "run_autograder": (RUN_AUTOGRADER.format(assignment=assignment.id).encode(), True),
        "grading.yaml": (course.path.read_bytes(), False),
    }
    for other in course.assignments.values():  # grading.yaml is validated whole: every suite's group file
        groups = course.suite_dir(other) / SUITE_FILE
        if groups.is_file():
            files[groups.relative_to(course.root).as_posix()] = (groups.read_bytes(), False)
    pyproject = package.parent / "pyproject.toml"
    if pyproject.is_file():
        files["pyproject.toml"] = (pyproject.read_bytes(), False)
    for path in _tree(package):
        files[f"autograder/{path.relative_to(package).as_posix()}"] = (path.read_bytes(), False)
    for folder in (course.suite_dir(assignment), course.solution_dir(assignment)):
        for path in _tree(folder):
            files[path.relative_to(course.root).as_posix()] = (path.read_bytes(), False)
    return dict(sorted(files.items()))


def write_bundle(course: Course, assignment: Assignment, destination: Path) -> Path:
    """Write the autograder zip; the same inputs give the same bytes."""
    return write_zip(destination, bundle_files(course, assignment))


def main(*, assignment: str, config: str | None = None, out: str | None = None, stream=sys.stdout) -> int:
    course = load_course(config)
    target = course.assignment(assignment)
    destination = Path(out) if out else Path(f"{target.id}_gradescope.zip")
    write_bundle(course, target, destination)
    print(f"{target.id}: wrote {destination}: upload it as the autograder of a Gradescope programming "
          "assignment (it unpacks to /autograder/source, runs setup.sh, then run_autograder per submission)",
          file=stream)
    return 0


# --------------------------------------------------------------------------- inside Gradescope

def grade_in_gradescope(root: Path, assignment_id: str) -> dict:
    """Grade root/submission with root/source's course; a fault of ours still yields a results.json."""
    from autograder.pipeline.grade_submission import grade_one, make_context
    from autograder.pipeline.results import gradescope_results

    try:
        course = load_course(root / "source" / "grading.yaml")
        target = course.assignment(assignment_id)
        context = make_context(course, target, None)
        result = grade_one(context, "submission", root / "submission")
        return gradescope_results(result)
    except Exception as error:  # the staff's fault: say so, never a silent zero
        print(traceback.format_exc(), file=sys.stderr)
        return {"score": 0.0, "output": f"The autograder failed ({type(error).__name__}: {error}); this is not "
                                        "your fault: the course staff will regrade this submission.",
                "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def run(argv: list[str]) -> int:
    root, assignment_id = Path(argv[0]), argv[1]
    import autograder

    print(f"autograder {autograder.__version__} from {Path(autograder.__file__).parent}")
    data = grade_in_gradescope(root, assignment_id)
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"score {data['score']:g}; wrote {results}")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
