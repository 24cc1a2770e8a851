"""Feedback that teaches: every mutant and example bug of a01-a04 is graded, and its feedback
must name the feature its header declares (`# feature: NAME` in tests/mutants/<id>/*.yaml,
`features:` in examples/submissions/<id>/expected.yaml), and must show no grader-internal
name, no hidden test's inputs and no line of a grader traceback.

Run alone (it grades about 80 submissions): `pytest tests/e2e/test_feedback.py -s`; the
closing line gives the count named / total. `python tests/e2e/test_feedback.py a04` runs one
assignment and prints each subject's summary.
"""
from __future__ import annotations

import concurrent.futures
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENTS = ("a01_linear_models", "a02_gradient_descent", "a03_sgd", "a04_optimizers")
INTERNAL = re.compile(r"StudentError|GraderFault|DID NOT RAISE|autograder\.|SubmissionRejected|WorkerCrashed|"
                      r"Traceback \(most recent call last\)|site-packages|/tests/grading/|_pytest|hypothesis\.errors")


@dataclass
class Graded:
    assignment: str
    subject: str
    feature: str
    markdown: str
    summary: list[str]
    hidden_text: str
    explanations: str  # the diagnoses and the "Why:" of each task line: where the feature must be named


def normalise(text: str) -> str:
    return re.sub(r"[\s_\-\\]+", " ", text.lower())


def names_feature(markdown: str, feature: str) -> bool:
    return normalise(feature) in normalise(markdown)


def _subjects(course, assignment, scratch: Path):
    from autograder.pipeline.grade_submission import make_context
    from autograder.commands.verify import plan_jobs

    for job in plan_jobs(course, assignment, scratch):
        if job.mutant is not None and not job.public_only and job.context is not None:
            yield f"mutant {job.mutant.name}", job.mutant.feature, job.context, job.folder
    examples = ROOT / "examples" / "submissions" / assignment.id
    expected = yaml.safe_load((examples / "expected.yaml").read_text())
    context = make_context(course, assignment, None)
    for name, feature in (expected.get("features") or {}).items():
        yield f"example {name}", feature, context, examples / name


def grade_assignment(assignment_id: str, jobs: int = 2) -> list[Graded]:
    from autograder.course.reader import load_course
    from autograder.pipeline.feedback import summary_lines
    from autograder.pipeline.grade_submission import grade_one
    from autograder.course.late import LateDecision
    from autograder.commands.report.pages import feedback_markdown

    course = load_course(str(ROOT / "grading.yaml"))
    assignment = course.assignment(assignment_id)
    order = [g.name for g in assignment.tests]
    with tempfile.TemporaryDirectory(prefix="feedback-test-") as scratch:
        subjects = list(_subjects(course, assignment, Path(scratch)))

        def work(item):
            subject, feature, context, folder = item
            result = grade_one(context, subject.replace(" ", "-"), folder)
            late = LateDecision.from_dict(result.late, result.score)
            hidden = "\n".join(t.feedback + "\n" + t.diagnosis for t in result.tests if t.visibility != "public")
            summary = summary_lines(result, order)
            why = [line.split(". Why: ", 1)[1] for line in summary if ". Why: " in line]
            refused = [result.reason] if result.status == "rejected" else []  # a refusal's reason is its explanation
            explanations = "\n".join([t.diagnosis for t in result.tests if t.diagnosis] + why + refused)
            return Graded(assignment_id, subject, feature, feedback_markdown(result, late, assignment),
                          summary, hidden, explanations)

        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(work, subjects))


def problems_of(graded: Graded) -> list[str]:
    problems = []
    if not graded.feature:
        problems.append("declares no feature")
    elif not names_feature(graded.explanations, graded.feature):
        problems.append(f"no diagnosis or task summary names {graded.feature!r}")
    leak = INTERNAL.search(graded.markdown)
    if leak:
        problems.append(f"grader-internal text {leak.group(0)!r}")
    if re.search(r"Failing test case|Falsifying example|\bseed=\d", graded.hidden_text):
        problems.append("a hidden test's inputs are shown")
    return problems


@pytest.fixture(scope="module")
def graded() -> list[Graded]:
    return [g for assignment in ASSIGNMENTS for g in grade_assignment(assignment)]


def test_feedback_names_the_feature_of_every_mutant_and_example_bug(graded):
    named = [g for g in graded if g.feature and names_feature(g.explanations, g.feature)]
    print(f"\nfeedback names the declared feature: {len(named)}/{len(graded)}")
    bad = {f"{g.assignment} {g.subject}": problems_of(g) for g in graded if problems_of(g)}
    assert not bad, "\n".join(f"{k}: {'; '.join(v)}" for k, v in bad.items())


def test_adam_without_bias_correction_says_which_task_and_why_on_the_first_screen(graded):
    example = next(g for g in graded if g.subject == "example adam_no_bias_correction")
    first_screen = "\n".join(example.markdown.splitlines()[:20])
    assert "Task 4 Adam:" in first_screen and "bias correction" in first_screen


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    results = [g for a in (sys.argv[1:] or ASSIGNMENTS) for g in grade_assignment(
        next(x for x in ASSIGNMENTS if x.startswith(a)))]
    for g in results:
        problems = problems_of(g)
        print(f"{'ok ' if not problems else 'BAD'} {g.assignment} {g.subject} [{g.feature}] {'; '.join(problems)}")
        for line in g.explanations.splitlines()[:3]:
            print(f"      {line[:300]}")
    named = sum(bool(g.feature) and names_feature(g.explanations, g.feature) for g in results)
    print(f"named {named}/{len(results)}")
