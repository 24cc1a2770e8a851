"""Where one submission's grading time goes, per assignment: harness, oracle, boundary, student compute.

For each assignment, one batch (the warm pool, as `autograder grade` runs it, -j 1) grades the
reference as a submission and a correct example in another style (`correct_alt`), then the
reference again: the first meets an empty oracle store, the last a full one. Each result.json
carries the run's timings (harness/plugin.py `_timings`), split here into
- harness: everything that is not below: intake, checks, the forked run's start, collection,
  Hypothesis' generation, the tests' own comparisons, scoring and writing;
- oracle: the reference's and oracle.py's calls (answered from the store, or computed);
- boundary: starting the sandboxed worker, encoding and copying values, round trips;
- student: the time inside the student's calls, as the worker measured it.
The floor is what no grader can avoid: the student's compute plus the boundary's copies and round
trips; `ratio` is the submission's whole time over that floor.

    .venv/bin/python bench/grading_profile.py --out bench/results/grading_profile.json
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ASSIGNMENTS = ["a01_linear_models", "a02_gradient_descent", "a03_sgd", "a04_optimizers", "a05_language_models",
               "a06_attention", "a07_flash_attention", "a08_mixed_precision", "a09_parallelism"]


def split(result: dict) -> dict:
    """One result's time, split four ways, with its floor and ratio."""
    timings = result.get("timings") or {}
    total = result["duration_seconds"]
    oracle = timings.get("oracle", 0.0)
    boundary = timings.get("boundary", 0.0) + timings.get("worker_start", 0.0)
    student = timings.get("student", 0.0)
    floor = student + boundary
    return {"total_s": round(total, 3), "harness_s": round(total - oracle - boundary - student, 3),
            "of_which_outside_tests_s": round(total - timings.get("tests", 0.0), 3),
            "oracle_s": round(oracle, 3), "boundary_s": round(boundary, 3), "student_s": round(student, 3),
            "floor_s": round(floor, 3), "ratio": round(total / floor, 2) if floor else None,
            "oracle_calls": timings.get("oracle_calls", 0), "oracle_hits": timings.get("oracle_hits", 0),
            "score": result["score"]}


def profile(assignment: str, scratch: Path) -> dict:
    from autograder.course.reader import load_course

    course = load_course(ROOT / "grading.yaml")
    target = course.assignment(assignment)
    examples = ROOT / "examples" / "submissions" / assignment
    alternative = "correct_alt" if (examples / "correct_alt").is_dir() else None
    items = [("1-reference", course.solution_dir(target))]
    if alternative:
        items.append(("2-" + alternative, examples / alternative))
    items.append(("3-reference-again", course.solution_dir(target)))
    staged = []
    for name, source in items:
        target_dir = scratch / assignment / name
        shutil.copytree(source, target_dir, ignore=shutil.ignore_patterns("README.md", "__pycache__"))
        staged.append(f"{name}={target_dir}")
    out = scratch / f"out-{assignment}"
    begin = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "autograder", "grade", assignment, *staged, "--out", str(out), "-j", "1"],
                               cwd=ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{assignment}: grading failed:\n{completed.stderr[-2000:]}")
    record = {"batch_wall_s": round(time.perf_counter() - begin, 2)}
    for name, _ in items:
        record[name] = split(json.loads((out / name / "result.json").read_text()))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", default=ASSIGNMENTS)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "grading_profile.json"))
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from grading_overhead import machine

    record = {"machine": machine(), "assignments": {}}
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch:
        for assignment in options.assignments:
            record["assignments"][assignment] = profile(assignment, Path(scratch))
            print(assignment, json.dumps(record["assignments"][assignment]), flush=True)
    Path(options.out).parent.mkdir(parents=True, exist_ok=True)
    Path(options.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
