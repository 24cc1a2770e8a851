"""A hung function costs its tests, not minutes: call budgets from the reference's own time."""
import textwrap
import time
from pathlib import Path

import pytest

from autograder.sandbox.budget import CallBudget, duration
from autograder.sandbox.errors import StudentTimeout
from autograder.sandbox.remote import StudentModule
from autograder.sandbox.session import CallLimits, Session
from autograder.sandbox.worker import WorkerSpec

SLOW = '''
import time


def step(x, hang=False, seconds=0.0):
    if hang:
        while True:
            pass
    time.sleep(seconds)
    return x + 1
'''


def test_the_plan_follows_the_functions_history():
    budget = CallBudget(ceiling=30, floor=2, multiple=50, reference_seconds=lambda name, args, kwargs: 0.003)
    assert budget.plan("step").first == 30 and budget.plan("step").extend is None   # never returned yet: the ceiling
    budget.record("step", timed_out=False)
    plan = budget.plan("step")
    assert plan.first == 2 and plan.extended() == 2 and plan.reference == 0.003     # max(2 s, 50 x 3 ms)
    slow = CallBudget(ceiling=30, floor=2, multiple=50, reference_seconds=lambda name, args, kwargs: 0.2)
    slow.record("step", timed_out=False)
    assert slow.plan("step").extended() == 10                                       # 50 x 0.2 s
    slow.record("step", timed_out=True)
    assert slow.plan("step").extended() == 2                                        # short: max(2 s, 5 x 0.2 s)
    huge = CallBudget(ceiling=30, floor=2, multiple=50, reference_seconds=lambda name, args, kwargs: 5.0)
    huge.record("step", timed_out=False)
    assert huge.plan("step").extended() == 30                                       # never past the ceiling
    unknown = CallBudget(ceiling=30, floor=2)
    unknown.record("step", timed_out=False)
    assert unknown.plan("step").extended() == 30                                    # no reference: the ceiling
    assert unknown.plan(None).first == 30                                           # a method of a student object


def test_durations_read_as_a_person_reads_them():
    assert [duration(s) for s in (0.003, 0.00025, 1.5)] == ["3 ms", "250 µs", "1.5 s"]


@pytest.fixture
def session(tmp_path: Path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "slow.py").write_text(textwrap.dedent(SLOW))
    timed = []

    def reference(name, args, kwargs):
        timed.append(name)
        return 0.003

    session = Session(WorkerSpec(folder, "slow", zygote=None), CallLimits(8, 60))
    session.budget = CallBudget(ceiling=8, floor=0.5, multiple=50, reference_seconds=reference)
    session.timed = timed
    yield session
    session.close()


def test_a_hung_function_costs_the_ceiling_once_then_short_budgets(session):
    student = StudentModule(session)
    assert student.step(1) == 2                       # returned once: later calls are budgeted
    assert session.timed == []                        # a call that returns within the floor times nothing
    session.begin_test()
    started = time.monotonic()
    with pytest.raises(StudentTimeout) as caught:
        student.step(1, hang=True)
    assert 0.5 <= time.monotonic() - started < 6      # max(0.5 s, 50 x 3 ms) = 0.5 s, not the 8 s limit
    assert "step timed out" in str(caught.value) and "the reference takes 3 ms for this call" in str(caught.value)
    session.begin_test()
    started = time.monotonic()
    with pytest.raises(StudentTimeout):
        student.step(1, hang=True)
    assert time.monotonic() - started < 6


def test_a_slow_correct_call_gets_its_multiple_of_the_reference(session):
    student = StudentModule(session)
    session.budget.reference_seconds = lambda name, args, kwargs: 0.05   # 50 x 50 ms = 2.5 s
    assert student.step(1) == 2
    assert student.step(1, seconds=1.2) == 2          # past the 0.5 s floor, within 2.5 s: fine
    assert session.student_seconds >= 1.2 and session.boundary_seconds >= 0
