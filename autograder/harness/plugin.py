"""The grading plugin for pytest: fixtures for suites, the `grading` profile, outcome records.

Loaded with `-p autograder.harness.plugin` in the trusted process only. It never imports student
code: the `student` fixture talks to a sandboxed worker (autograder.sandbox).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from autograder.course import records
from autograder.course.model import Assignment, Course
from autograder.course.overrides import limit_override
from autograder.course.reader import load_course
from autograder.harness.diagnosis import diagnosis_of
from autograder.harness.oracle_cache import (
    CachedModule,
    OracleCache,
    wrap_module_functions,
)
from autograder.harness.outcomes import classify, device_names, notes, stable
from autograder.pipeline.pytest_run import device_of_test
from autograder.pipeline.score import feedback_level
from autograder.sandbox.budget import CallBudget
from autograder.sandbox.isolation import detect_isolation
from autograder.sandbox.probe import Probe
from autograder.sandbox.remote import StudentModule
from autograder.sandbox.resources import limit_trusted_memory
from autograder.sandbox.session import CallLimits, Session
from autograder.sandbox.worker import WorkerSpec

STATE_KEY = pytest.StashKey["GradingState"]()


@dataclasses.dataclass
class GradingState:
    course: Course
    assignment: Assignment
    suite_dir: Path
    submission: Path | None
    outcomes_file: Path | None
    visibility: str
    device: str = ""        # "cuda": only the CUDA tests run (a device-tagged partial result)
    session: Session | None = None
    outcomes: dict[str, records.TestOutcome] = dataclasses.field(default_factory=dict)
    isolation: dict = dataclasses.field(default_factory=dict)
    started: dict[str, float] = dataclasses.field(default_factory=dict)
    devices_used: set[str] = dataclasses.field(default_factory=set)
    cache: OracleCache = dataclasses.field(default_factory=OracleCache)  # the oracles' answers and the reference's times
    clock: dict[str, float] = dataclasses.field(default_factory=dict)    # configure, collected

    def test_id(self, item: pytest.Item) -> str:
        try:
            relative = Path(item.path).resolve().relative_to(self.suite_dir)
        except ValueError:
            relative = Path(Path(item.path).name)
        return f"{relative.as_posix()}::{item.nodeid.split('::', 1)[-1]}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder")
    group.addoption("--assignment", help="assignment id or alias of grading.yaml")
    group.addoption("--submission", help="folder holding the student's module (default: the reference)")
    group.addoption("--course", default=None, help="path of grading.yaml (default: ./grading.yaml)")
    group.addoption("--outcomes", default=None, help="write test outcomes here (JSON lines)")
    group.addoption("--visibility", default="all", choices=["all", "public"], help="run only public tests")
    group.addoption("--list-tests", default=None, help="write the collected test ids here and run nothing")
    group.addoption("--limit", action="append", default=[], help="NAME=VALUE: a limit override of this batch")
    group.addoption("--device", default="", choices=["", "cuda"], help="run only the tests parametrized for this device")
    group.addoption("--serve-collected", default=None, help=argparse.SUPPRESS)  # the warm pool's collect-once server
    group.addoption("--oracle-cache", default="memory",
                    help="where the oracles' answers are kept: off, memory (this run), or a SQLite file shared by a batch")


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--assignment"):
        return
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "grading", derandomize=True, database=None, deadline=None, print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                               HealthCheck.function_scoped_fixture],  # `device` is function-scoped, the same for every example
    )
    settings.load_profile("grading")
    course = load_course(config.getoption("--course"), limits=dict(limit_override(text) for text in config.getoption("--limit")))
    assignment = course.assignment(config.getoption("--assignment"))
    if config.getoption("--outcomes"):  # a grading run (not a suite author's plain pytest): cap this process
        limit_trusted_memory(assignment.limits.grader_memory_mb)
    submission = config.getoption("--submission")
    outcomes = config.getoption("--outcomes")
    cache_option = config.getoption("--oracle-cache")
    cache = OracleCache(None if cache_option in ("off", "memory") else Path(cache_option), reuse=cache_option != "off")
    config.stash[STATE_KEY] = state = GradingState(
        course=course, assignment=assignment, suite_dir=course.suite_dir(assignment).resolve(),
        submission=Path(submission).resolve() if submission else None,
        outcomes_file=Path(outcomes) if outcomes else None,
        visibility=config.getoption("--visibility"), device=config.getoption("--device"),
        cache=cache, clock={"configure": time.perf_counter()},
    )
    _cache_oracle_modules(state)


def _cache_oracle_modules(state: GradingState) -> None:
    """The suite's oracle modules (oracle.py; legacy *_oracle(s).py) answer through the cache.

    They are imported here, before collection, so the tests' `from oracle import f` binds the
    cached functions; the folder is the one pytest puts first on sys.path for the suite anyway.
    """
    suite = str(state.suite_dir)
    if suite not in sys.path:
        sys.path.insert(0, suite)
    for path in sorted(state.suite_dir.glob("*.py")):
        if path.stem == "oracle" or path.stem.endswith(("_oracle", "_oracles")):
            module = sys.modules.get(path.stem) or importlib.import_module(path.stem)
            if Path(getattr(module, "__file__", "") or "").resolve() == path.resolve():
                wrap_module_functions(module, state.cache, path.stem)


def _state(config: pytest.Config) -> GradingState:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        raise pytest.UsageError("the autograder plugin needs --assignment")
    return state


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames and STATE_KEY in metafunc.config.stash:
        devices = list(metafunc.config.stash[STATE_KEY].assignment.devices)
        metafunc.parametrize("device", devices, indirect=True)


def select_items(state: GradingState, items: list[pytest.Item]) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """The tests this run grades (its visibility and device) and the rest."""
    selected, deselected = [], []
    for item in items:
        test_id = state.test_id(item)
        group = state.assignment.group_for(test_id)
        public_only = state.visibility == "public" and (group is None or group.visibility != "public")
        (deselected if public_only or (state.device and device_of_test(test_id) != state.device) else selected).append(item)
    return selected, deselected


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if STATE_KEY not in config.stash:
        return
    from hypothesis import Phase, is_hypothesis_test, settings
    from hypothesis.errors import InvalidArgument

    state = _state(config)
    selected, deselected = select_items(state, items)
    configured: set = set()
    for item in selected:
        test_id = state.test_id(item)
        group = state.assignment.group_for(test_id)
        function = getattr(item, "obj", None)
        if group is not None and is_hypothesis_test(function) and function not in configured:
            configured.add(function)  # parametrized tests share one function: settings apply once
            examples = group.hypothesis_examples or state.assignment.hypothesis_examples
            # Shrinking only pays where the student sees the minimal example (public feedback);
            # the explain phase never does. Both cost hundreds of worker calls per failure.
            shows_example = feedback_level(state.assignment, group) == "full"
            phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shows_example else [])
            try:
                settings(settings.default, max_examples=examples, phases=phases)(function)
            except InvalidArgument:
                raise pytest.UsageError(
                    f"{test_id}: the suite sets its own @settings; remove it: the grading profile and the group's "
                    f"hypothesis_examples in grading.yaml decide a test's settings") from None
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
    list_file = config.getoption("--list-tests")
    if list_file:
        Path(list_file).write_text("\n".join(state.test_id(item) for item in items) + "\n")
        items[:] = []


# ---------------------------------------------------------------------- fixtures

def _open_session(state: GradingState) -> Session:
    assignment = state.assignment
    limits = assignment.limits
    submission = state.submission or state.course.solution_dir(assignment).resolve()
    spec = WorkerSpec(
        submission_dir=submission, module=assignment.module_name, preload=assignment.preload,
        forbidden_calls=assignment.forbidden.calls, forbidden_ops=assignment.forbidden.ops, limits=limits, start_seconds=max(60.0, limits.call_seconds),
        allowed_imports=assignment.allowed_imports, forbidden_imports=assignment.forbidden.imports,
        assignment=assignment.id,
    )
    state.isolation = detect_isolation().as_dict()
    session = Session(spec, CallLimits(limits.call_seconds, limits.test_seconds, call_bytes=limits.transfer_mb_per_call << 20,
                                       test_bytes=limits.transfer_mb_per_test << 20))
    session.budget = CallBudget(limits.call_seconds, floor=limits.call_floor_seconds, multiple=limits.call_reference_multiple,
                                reference_seconds=lambda name, args, kwargs: _reference_seconds(state, name, args, kwargs))
    return session


def _reference_module(state: GradingState) -> Any:
    """The reference solution, imported once in the trusted process (None where the course has none)."""
    name = f"reference_{state.assignment.id}"
    if name not in sys.modules:
        path = state.course.solution_dir(state.assignment) / state.assignment.module
        if not path.is_file():
            return None
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _reference_seconds(state: GradingState, name: str, args: tuple, kwargs: dict) -> float | None:
    """The reference's time for the same call as the student's (stored, or timed once on copies)."""
    module = _reference_module(state)
    function = getattr(module, name, None) if module is not None else None
    if not inspect.isfunction(function):
        return None
    return state.cache.reference_seconds(f"reference.{name}", function, args, kwargs)


@pytest.fixture(scope="session")
def assignment(request: pytest.FixtureRequest) -> Assignment:
    return _state(request.config).assignment


@pytest.fixture(scope="session")
def _grading_session(request: pytest.FixtureRequest) -> Session:
    state = _state(request.config)
    if state.session is None:
        state.session = _open_session(state)
    return state.session


@pytest.fixture(scope="session")
def student(_grading_session: Session) -> StudentModule:
    """The student's module, reached through the sandboxed worker."""
    return StudentModule(_grading_session)


@pytest.fixture(scope="session")
def probe(_grading_session: Session, assignment: Assignment) -> Probe:
    return Probe(_grading_session, assignment.forbidden.ops)


@pytest.fixture(scope="session")
def rank_group(_grading_session: Session) -> Any:
    """Start p ranks of the student's module in one gloo group: `with rank_group(3) as group: group.call(...)`."""
    import functools

    from autograder.sandbox.ranks import RankGroup

    if detect_isolation().mode != "root":
        pytest.skip("deferred: multi-process tests need the root isolation mode; regrade as root to fill them in")
    return functools.partial(RankGroup, _grading_session.spec)


@pytest.fixture(scope="session")
def reference(request: pytest.FixtureRequest) -> Any:
    """The reference solution, imported in the trusted process; its functions answer through the oracle cache."""
    state = _state(request.config)
    module = _reference_module(state)
    if module is None:
        raise FileNotFoundError(f"the reference solution of {state.assignment.id} is not in this course")
    return CachedModule(module, state.cache, "reference")


@pytest.fixture
def device(request: pytest.FixtureRequest) -> str:
    name = request.param
    if name == "cuda":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("deferred: this test needs a CUDA device, which this machine lacks; a GPU machine grades it")
    _state(request.config).devices_used.add(name)
    return name


# ---------------------------------------------------------------------- outcomes

def pytest_runtest_setup(item: pytest.Item) -> None:
    if STATE_KEY not in item.config.stash:
        return
    state = _state(item.config)
    state.started[item.nodeid] = time.monotonic()
    if state.session is not None:
        state.session.begin_test()


def _hides_student_text(state: GradingState, test_id: str) -> bool:
    """Hidden tests show no student-controlled text (it can carry the hidden inputs out)."""
    group = state.assignment.group_for(test_id)
    return (group is None or group.visibility != "public") and feedback_level(state.assignment, group) != "full"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if STATE_KEY not in item.config.stash:
        return
    state = _state(item.config)
    test_id = state.test_id(item)
    previous = state.outcomes.get(test_id)
    if previous is None or previous.status == records.PASSED:  # keep the first problem
        recorded = _outcome(state, item, call, report, test_id)
        if recorded is not None:
            state.outcomes[test_id] = recorded
    if call.when == "teardown" and state.outcomes_file is not None and test_id in state.outcomes:
        with state.outcomes_file.open("a") as stream:
            stream.write(json.dumps({"outcome": dataclasses.asdict(state.outcomes[test_id])}) + "\n")


def _outcome(state: GradingState, item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport,
             test_id: str) -> records.TestOutcome | None:
    duration = time.monotonic() - state.started.get(item.nodeid, time.monotonic())
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        status = records.DEFERRED if reason.startswith("deferred") else records.GRADER_ERROR
        return records.TestOutcome(test_id, status, reason, duration=duration)
    if report.failed and call.excinfo is not None:
        status, message, trace = classify(call.excinfo.value, call.when, hidden=_hides_student_text(state, test_id))
        diagnosis = diagnosis_of(call.excinfo.value) if status in (records.FAILED, records.ERROR) else ""
        return records.TestOutcome(test_id, status, message, stable(notes(call.excinfo.value)), trace, duration,
                                   diagnosis=diagnosis)
    if report.failed:
        return records.TestOutcome(test_id, records.GRADER_ERROR, str(report.longrepr)[:500], duration=duration)
    if call.when == "call":
        return records.TestOutcome(test_id, records.PASSED, duration=duration)
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    if STATE_KEY in session.config.stash:
        _state(session.config).clock["collected"] = time.perf_counter()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    """With --serve-collected: collected once, this process forks one run per submission instead."""
    listener = session.config.getoption("--serve-collected")
    if listener is None or STATE_KEY not in session.config.stash:
        return None
    from autograder.harness.collected import serve

    serve(session, int(listener), _state(session.config), select_items)
    return True


def _timings(state: GradingState) -> dict[str, float]:
    """Where this run's time went: start-up and collection, the tests, and inside the tests the oracles,
    the boundary (worker starts, copies, round trips) and the student code's own compute."""
    stats = state.cache.stats
    timings = {
        "startup": state.clock.get("collected", state.clock["configure"]) - state.clock["configure"],
        "tests": sum(outcome.duration for outcome in state.outcomes.values()),
        "oracle": stats.seconds, "oracle_calls": stats.calls, "oracle_hits": stats.hits, "budget_calls": stats.budget_calls,
    }
    if state.session is not None:
        timings.update(student=state.session.student_seconds, boundary=state.session.boundary_seconds,
                       worker_start=state.session.start_seconds)
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in timings.items()}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    summary: dict[str, Any] = {"isolation": state.isolation, "rejected": None, "output": "", "restarts": 0, "calls": 0,
                               "device": device_names(state.devices_used or {state.device or "cpu"})}
    if state.session is not None:
        summary.update(rejected=state.session.rejected, restarts=state.session.restarts, calls=state.session.calls)
        if state.session.isolation:  # what the worker itself reported, before any student code ran
            reported = {k: v for k, v in state.session.isolation.items() if k != "uid"}  # the uid varies per run
            summary["isolation"] = dict(state.isolation, worker_reported=reported)
        state.session.close()
        summary["output"] = state.session.collected_output
    summary["timings"] = _timings(state)
    if state.outcomes_file is not None:
        with state.outcomes_file.open("a") as stream:
            stream.write(json.dumps({"summary": summary}) + "\n")
