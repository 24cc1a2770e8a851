"""The `verify` verb: prove a suite before it grades anyone.

The reference must score full marks, the generated stub 0, and every mutant of
tests/mutants/<id>/ (a plausible student bug, written as a textual edit of the reference)
must fail at least one test matching its `expect_fail` patterns. Everything is graded
through the real pipeline (grade.grade_one: intake, checks, sandbox); mutants run only
their targeted tests, and submissions are graded in parallel.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from autograder.course import records
from autograder.course.model import Assignment, Course, match_test_id
from autograder.course.reader import load_course
from autograder.course.regions import stub_source
from autograder.errors import AutograderError, ExitCode
from autograder.pipeline.grade_submission import (
    GradeContext,
    default_jobs,
    grade_one,
    make_context,
)

MUTANT_KEYS = ("description", "expect_fail", "replace")


class SuiteNotProven(AutograderError):
    """`verify` found a violation: the reference, the stub or a mutant did not score as it must."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class Mutant:
    """One known-bug variant of the reference (tests/mutants/<id>/<name>.yaml)."""

    name: str
    description: str
    expect_fail: tuple[str, ...]
    replacements: tuple[tuple[str, str], ...]
    path: Path
    feature: str = ""       # `# feature: NAME` header: what a diagnosis must name
    common: bool = False    # `# common: true` header: the most common bug of its task, public tests must catch it


@dataclass(frozen=True)
class Verdict:
    """One row of the verify table."""

    assignment: str
    subject: str
    expected: str
    got: str
    ok: bool
    detail: str = ""


def _mutant_problem(path: Path, message: str) -> AutograderError:
    return AutograderError(f"{path}: {message}; see 'Mutants' in docs/writing-grading-tests.md")


def mutant_headers(text: str) -> dict[str, str]:
    """The `# key: value` comment lines at the top of a mutant file (feature, common)."""
    headers = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line[1:].partition(":")
        headers[key.strip().lower()] = value.strip()
    return headers


def read_mutant(path: Path) -> Mutant:
    """Parse and validate one mutant file; errors name the file and the fix."""
    try:
        headers = mutant_headers(path.read_text(encoding="utf-8"))
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise _mutant_problem(path, f"not readable YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise _mutant_problem(path, "expected a mapping with description, expect_fail and replace")
    unknown = sorted(set(data) - set(MUTANT_KEYS))
    if unknown:
        raise _mutant_problem(path, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(MUTANT_KEYS)}")
    expect = data.get("expect_fail")
    expect = [expect] if isinstance(expect, str) else expect
    if not isinstance(expect, list) or not expect or not all(isinstance(p, str) for p in expect):
        raise _mutant_problem(path, "expect_fail must list test id patterns, e.g. [\"test_hidden.py::test_adam_*\"]")
    replace = data.get("replace")
    if not isinstance(replace, list) or not replace:
        raise _mutant_problem(path, "replace must list edits: - {find: TEXT, with: TEXT}")
    edits = []
    for index, edit in enumerate(replace):
        if not isinstance(edit, dict) or set(edit) != {"find", "with"} or not all(isinstance(v, str) for v in edit.values()):
            raise _mutant_problem(path, f"replace[{index}] must be a mapping with exactly the text keys find and with")
        if not edit["find"]:
            raise _mutant_problem(path, f"replace[{index}].find is empty")
        edits.append((edit["find"], edit["with"]))
    return Mutant(name=path.stem, description=str(data.get("description", "")), expect_fail=tuple(expect),
                  replacements=tuple(edits), path=path, feature=headers.get("feature", ""),
                  common=headers.get("common", "").lower() in ("true", "yes", "1"))


def apply_mutant(mutant: Mutant, source: str) -> str:
    """The reference source with the mutant's edits; each `find` must occur exactly once."""
    for index, (find, replacement) in enumerate(mutant.replacements):
        count = source.count(find)
        if count != 1:
            raise _mutant_problem(mutant.path, f"replace[{index}].find occurs {count} times in the reference "
                                  "(it must occur exactly once); quote more of the line to make it unique")
        source = source.replace(find, replacement)
    return source


def mutants_dir(course: Course, assignment: Assignment) -> Path:
    return course.root / "tests" / "mutants" / assignment.id


# --------------------------------------------------------------------------- jobs

@dataclass(frozen=True)
class Job:
    """One submission to grade for verify, with the context (test subset) to grade it in."""

    assignment: Assignment
    subject: str
    expected: str
    context: GradeContext | None
    folder: Path | None
    mutant: Mutant | None = None
    problem: str = ""
    public_only: bool = False  # graded with the public tests alone: does `autograder check` warn?


def _write_submission(folder: Path, assignment: Assignment, solution_dir: Path, module_text: str) -> Path:
    shutil.copytree(solution_dir, folder, ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    (folder / assignment.module).write_text(module_text, encoding="utf-8")
    return folder


def plan_jobs(course: Course, assignment: Assignment, scratch: Path) -> list[Job]:
    """Reference, stub and every mutant of one assignment (bad mutant files become failing rows)."""
    context = make_context(course, assignment, None)
    solution_dir = course.solution_dir(assignment)
    reference = (solution_dir / assignment.module).read_text(encoding="utf-8")
    base = scratch / assignment.id
    jobs = [
        Job(assignment, "reference", "full marks", context, _write_submission(base / "reference", assignment, solution_dir, reference)),
        Job(assignment, "stub", "0", context, _write_submission(
            base / "stub", assignment, solution_dir, stub_source(reference, str(solution_dir / assignment.module)))),
    ]
    for path in sorted(mutants_dir(course, assignment).glob("*.yaml")):
        subject = f"mutant {path.stem}"
        try:
            mutant = read_mutant(path)
            text = apply_mutant(mutant, reference)
        except AutograderError as error:
            jobs.append(Job(assignment, subject, "loses points", None, None, problem=str(error)))
            continue
        targeted = tuple(t for t in context.test_ids if any(match_test_id(p, t) for p in mutant.expect_fail))
        if not targeted:
            jobs.append(Job(assignment, subject, "loses points", None, None, mutant,
                            f"{path}: expect_fail {list(mutant.expect_fail)} matches no test of the suite"))
            continue
        functions = sorted({t.split("::", 1)[-1].split("[", 1)[0] for t in targeted})
        subset = dataclasses.replace(context, test_ids=targeted, keyword=" or ".join(functions))
        folder = _write_submission(base / path.stem, assignment, solution_dir, text)
        jobs.append(Job(assignment, subject, "loses points", subset, folder, mutant))
        public = tuple(t for t in context.test_ids if (g := assignment.group_for(t)) is not None and g.visibility == "public")
        if public:
            jobs.append(Job(assignment, f"{subject}, public tests only", "caught" if mutant.common else "(reported)",
                            dataclasses.replace(context, test_ids=public, visibility="public", keyword=""), folder, mutant,
                            public_only=True))
    return jobs


def judge(job: Job, result: records.SubmissionResult | None) -> Verdict:
    """Compare one graded submission with what verify expects of it."""
    row = dict(assignment=job.assignment.id, subject=job.subject, expected=job.expected)
    if result is None:
        return Verdict(**row, got="not graded", ok=False, detail=job.problem)
    counted = [t for t in result.tests if t.status != records.DEFERRED]
    score, possible = result.score, round(sum(t.max_score for t in counted), 4)
    got = f"{score:g}/{possible:g}"
    faults = [t.id for t in result.tests if t.status == records.GRADER_ERROR]
    if result.status == records.GRADER_ERROR or faults:
        return Verdict(**row, got=got, ok=False, detail=f"grader error ({', '.join(faults[:3]) or result.reason[:200]})")
    if job.subject == "reference":
        missed = [f"{t.id} ({t.status}: {t.feedback.splitlines()[0][:160] if t.feedback else ''})"
                  for t in counted if t.status != records.PASSED]
        detail = f"{result.reason[:200]} {'; '.join(missed[:3])}".strip()
        return Verdict(**row, got=got, ok=result.status == records.GRADED and not missed and score >= possible - 1e-6,
                       detail=detail)
    if job.subject == "stub":
        passed = [t.id for t in counted if t.status == records.PASSED and t.max_score > 0]
        return Verdict(**row, got=got, ok=score == 0, detail=f"passes {', '.join(passed[:3])}" if passed else "")
    failed = [t for t in counted if t.status != records.PASSED]
    if job.public_only:
        caught = bool(failed) or result.status == records.REJECTED
        return Verdict(**row, got="caught publicly" if caught else "not caught publicly",
                       ok=caught or not job.mutant.common,
                       detail="" if caught or not job.mutant.common else "a `common: true` mutant must be caught by the "
                       "public tests: choose public inputs where this bug shows")
    got = f"fails {len(failed)}/{len(counted)} targeted"
    if result.status == records.REJECTED:
        return Verdict(**row, got="rejected", ok=False, detail=f"the mutant does not load, so it proves nothing; "
                       f"make it a bug that imports ({result.reason[:160]})")
    return Verdict(**row, got=got, ok=bool(failed),
                   detail="" if failed else f"every test matching {list(job.mutant.expect_fail)} passes: the suite misses this bug")


def run_jobs(jobs: list[Job], parallel: int, stream=None) -> list[Verdict]:
    """Grade the jobs `parallel` at a time, printing a progress line as each one finishes."""
    def work(job: Job) -> Verdict:
        if job.context is None:
            return judge(job, None)
        try:
            return judge(job, grade_one(job.context, job.subject.replace(" ", "-"), job.folder))
        except Exception as error:  # a bug of ours: this row fails, the others still run
            return Verdict(job.assignment.id, job.subject, job.expected, "crashed", False, f"verify fault: {error!r}"[:300])

    verdicts = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for index, future in enumerate(concurrent.futures.as_completed([pool.submit(work, j) for j in jobs]), 1):
            verdict = future.result()
            verdicts.append(verdict)
            if stream is not None:
                print(f"[{index}/{len(jobs)}] {verdict.assignment} {verdict.subject}: "
                      f"{'ok' if verdict.ok else 'VIOLATION'}", file=stream, flush=True)
    return verdicts


def verifiable(course: Course, name: str, stream) -> list[Assignment]:
    """`all`: every assignment with a reference solution and a suite (the others are named, skipped)."""
    if name != "all":
        return [course.assignment(name)]
    chosen = []
    for assignment in course.assignments.values():
        if (course.solution_dir(assignment) / assignment.module).is_file() and course.suite_dir(assignment).is_dir():
            chosen.append(assignment)
        else:
            print(f"{assignment.id}: skipped (no reference solution or suite yet)", file=stream)
    return chosen


def print_table(verdicts: list[Verdict], stream) -> None:
    if not verdicts:
        print("nothing to verify: no assignment has both a reference solution and a suite", file=stream)
        return
    widths = [max(len(getattr(v, f)) for v in verdicts) for f in ("assignment", "subject", "expected", "got")]
    headers = ("assignment", "subject", "expected", "got")
    widths = [max(w, len(h)) for w, h in zip(widths, headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)) + "  verdict", file=stream)
    for v in verdicts:
        cells = (v.assignment, v.subject, v.expected, v.got)
        line = "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + ("  ok" if v.ok else "  VIOLATION")
        if v.detail:
            line += f"  ({v.detail})"
        print(line, file=stream)


def main(*, assignment: str, config: str | None = None, jobs: int | None = None,
         limits: dict[str, str] | None = None, stream=sys.stdout) -> int:
    """Verify one assignment's suite or all of them; exit 1 on any violation."""
    course = load_course(config, limits=limits)
    targets = verifiable(course, assignment, stream)
    with tempfile.TemporaryDirectory(prefix="autograder-verify-") as scratch:
        planned, broken = [], []
        for target in targets:
            try:
                planned += plan_jobs(course, target, Path(scratch))
            except AutograderError as error:  # the suite does not even collect: that row fails, the others run
                broken.append(Verdict(target.id, "suite", "collects", "error", False, str(error).splitlines()[0][:300]))
        # The full-suite runs are the longest: start them first so the pool stays busy.
        planned.sort(key=lambda job: job.subject not in ("reference", "stub"))
        verdicts = broken + run_jobs(planned, jobs or default_jobs(), stream)
    print(file=stream)
    rank = {"suite": 0, "reference": 1, "stub": 2}
    verdicts.sort(key=lambda v: (v.assignment, rank.get(v.subject, 3), v.subject))
    print_table(verdicts, stream)
    bad = [v for v in verdicts if not v.ok]
    for target in targets:
        probes = [v for v in verdicts if v.assignment == target.id and v.subject.endswith(", public tests only")]
        if probes:
            caught = sum(v.got == "caught publicly" for v in probes)
            print(f"{target.id}: public tests alone catch {caught}/{len(probes)} mutants ({100 * caught / len(probes):.0f}%)",
                  file=stream)
    mutants = sum(v.subject.startswith("mutant") and not v.subject.endswith(", public tests only") for v in verdicts)
    print(f"\n{len(targets)} assignment(s), {mutants} mutant(s): "
          + ("every check holds" if not bad else f"{len(bad)} violation(s)"), file=stream)
    if bad:
        raise SuiteNotProven(f"{len(bad)} violation(s): " + "; ".join(f"{v.assignment} {v.subject}" for v in bad[:6]))
    return 0
