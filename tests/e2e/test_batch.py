"""Batch grading end to end on the toy course: a class of 30 mixed submissions in one folder,
graded in parallel, resumed after a SIGKILL, and named by student id."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import ROOT, TOY_COURSE, run_cli

CONFIG = str(TOY_COURSE / "grading.yaml")
GOOD = (TOY_COURSE / "subs" / "good" / "toy.py").read_text()
BAD = (TOY_COURSE / "subs" / "bad" / "toy.py").read_text()
REFERENCE = (TOY_COURSE / "solutions" / "a99_toy" / "toy.py").read_text()

CORRECT = {
    "s01_ref": REFERENCE,
    "s02_good": GOOD,
    "s03_comments": "# my solution\n" + GOOD,
    "s04_mul": GOOD.replace("return x + x", "return x * 2"),
    "s05_numpy": "import numpy as np\n" + GOOD.replace("return x + x", "return np.multiply(x, 2)"),
    "s06_loop_counter": GOOD.replace("self.count = self.count + n", "for _ in range(n):\n            self.count += 1"),
    "s07_lambda_apply": GOOD.replace("def apply(f, x):\n    return 1 + f(x)", "apply = lambda f, x: f(x) + 1"),
    "s08_helper": GOOD.replace("def double(x):\n    return x + x", "def _twice(v):\n    return v + v\n\n\ndef double(x):\n    return _twice(x)"),
    "s09_good": GOOD,
}
PARTIAL = {
    "p01_bad": BAD,
    "p02_apply_off": GOOD.replace("return 1 + f(x)", "return f(x)"),
    "p03_counter_off": GOOD.replace("self.count = self.count + n", "self.count = n"),
    "p04_double_off": GOOD.replace("return x + x", "return x + x + 1e-3"),
    "p05_no_operators": GOOD.split("    def __add__")[0] + "\n\ndef apply(f, x):\n    return 1 + f(x)\n",
    "p06_apply_raises": GOOD.replace("return 1 + f(x)", "raise NotImplementedError('Task 3')"),
    "p07_double_int": GOOD.replace("return x + x", "return (x + x).astype(int) if hasattr(x, 'astype') else x + x"),
    "p08_stub": REFERENCE.replace("return np.asarray(x) * 2", "raise NotImplementedError"),
}
BROKEN = {
    "b01_syntax": "def double(x)\n    return x\n",
    "b02_forbidden_import": "import numpy.linalg\n" + GOOD,
    "b03_import_crash": "raise RuntimeError('boom at import')\n",
    "b04_torch": "import torch\n" + GOOD,
    "b05_empty": "",
    "b06_missing_counter": GOOD.split("class Counter")[0],
}
HOSTILE_FIXTURES = TOY_COURSE.parent / "hostile"  # honest double and Counter (16 points), a hostile apply or import
HOSTILE = {f"h_{name}": (HOSTILE_FIXTURES / name / "toy.py").read_text()
           for name in ("infinite_loop", "os_exit", "fork_bomb", "kill_parent", "read_hidden", "forge_results", "segfault")}
SOURCES = {**CORRECT, **PARTIAL, **BROKEN, **HOSTILE}
assert len(SOURCES) == 30


def make_class(root: Path) -> Path:
    """One folder holding 30 submissions in the formats students hand in."""
    folder = root / "class"
    folder.mkdir(parents=True)
    for index, (student, source) in enumerate(sorted(SOURCES.items())):
        kind = index % 5
        if kind == 0:  # a single file named after the student
            (folder / f"{student}.py").write_text(source)
            continue
        tree = root / "trees" / student
        inner = tree / "src" if kind == 3 else tree
        inner.mkdir(parents=True)
        (inner / "toy.py").write_text(source)
        if kind in (1, 3):
            shutil.copytree(tree, folder / student)
        elif kind == 2:
            shutil.make_archive(str(folder / student), "zip", root_dir=tree)
        else:
            shutil.make_archive(str(folder / student), "gztar", root_dir=tree)
    (folder / "README.txt").write_text("downloaded from the LMS\n")
    return folder


def comparable(out: Path) -> dict:
    """Every result without what legitimately differs between runs (times)."""
    found = {}
    for path in sorted(out.glob("*/result.json")):
        data = json.loads(path.read_text())
        found[data["submission"]] = {
            "status": data["status"], "score": data["score"], "reason": data["reason"],
            "hash": data["submission_hash"],
            "tests": [(t["id"], t["status"], t["score"], t["feedback"]) for t in data["tests"]],
        }
    return found


def grade(out: Path, *arguments: str, jobs: int):
    completed = run_cli("--config", CONFIG, "grade", "a99", *arguments, "--out", str(out), "-j", str(jobs))
    assert completed.returncode in (0, 3), completed.stderr + completed.stdout
    assert "Traceback" not in completed.stderr
    return completed


def gradebook(cli, out: Path) -> str:
    completed = cli("--config", CONFIG, "report", "a99", str(out))
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return (out / "gradebook.csv").read_text()


@pytest.fixture(scope="module", autouse=True)
def run_time_layers_only():
    """The hostile entries must reach the worker: the batch is about surviving what they do at run
    time (hangs, exits, fork bombs, segfaults), so the static allow-list, which would refuse most of
    them before they run, is opened here (tests/security checks it refuses them)."""
    previous = os.environ.get("AUTOGRADER_LANGUAGE_SURFACE")
    os.environ["AUTOGRADER_LANGUAGE_SURFACE"] = "open"
    yield
    if previous is None:
        os.environ.pop("AUTOGRADER_LANGUAGE_SURFACE")
    else:
        os.environ["AUTOGRADER_LANGUAGE_SURFACE"] = previous


@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory):
    """The class graded one submission at a time: the reference for the parallel runs."""
    root = tmp_path_factory.mktemp("batch")
    folder = make_class(root)
    out = root / "sequential"
    completed = grade(out, str(folder), jobs=1)
    return folder, out, completed


def test_a_folder_of_submissions_is_graded_per_student(one_by_one):
    folder, out, completed = one_by_one
    results = comparable(out)
    assert sorted(results) == sorted(SOURCES)  # README.txt is no submission; names from folders and archives
    assert "grading 30 submission(s)" in completed.stdout
    assert "[30/30]" in completed.stdout
    for student in CORRECT:
        assert results[student]["score"] == 20, (student, results[student])
    for student in PARTIAL:
        assert 0 <= results[student]["score"] < 20, student
    for student in ("b01_syntax", "b02_forbidden_import", "b03_import_crash", "b04_torch"):
        assert results[student]["status"] == "rejected", (student, results[student])
    assert results["b05_empty"]["score"] == 0 and results["b06_missing_counter"]["score"] == 10
    for student in HOSTILE:  # the honest part earns its points, the attack earns nothing
        assert 16 <= results[student]["score"] <= 20 and results[student]["status"] == "graded", (student, results[student])
    assert all(r["status"] != "grader-error" for r in results.values()), completed.stdout


def test_parallel_batch_gives_the_same_results_as_one_by_one(one_by_one, tmp_path):
    folder, sequential, _ = one_by_one
    completed = grade(tmp_path / "parallel", str(folder), jobs=2)
    assert "with -j 2" in completed.stdout
    assert comparable(tmp_path / "parallel") == comparable(sequential)


def _orphans_writing_into(out: Path) -> list[int]:
    """Processes of the killed batch still holding a file under `out` open."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd).startswith(str(out)) for fd in (entry / "fd").iterdir()):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_batch_killed_midway_resumes_without_losing_or_duplicating(one_by_one, tmp_path, cli):
    folder, sequential, _ = one_by_one
    out = tmp_path / "resumed"
    batch = subprocess.Popen([sys.executable, "-m", "autograder", "--config", CONFIG, "grade", "a99", str(folder),
                              "--out", str(out), "-j", "2"], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while len(list(out.glob("*/result.json"))) < 8 and batch.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert batch.poll() is None, "the batch ended before it could be killed"
    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait()
    for pid in _orphans_writing_into(out):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    written = list(out.glob("*/result.json"))
    assert 8 <= len(written) < 30
    kept = {path.parent.name: path.stat().st_mtime_ns for path in written  # a grader-error is graded again
            if json.loads(path.read_text())["status"] != "grader-error"}

    completed = grade(out, str(folder), jobs=2)
    assert f"{len(kept)} kept from a previous run" in completed.stdout
    assert {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/result.json") if p.parent.name in kept} == kept
    assert sorted(p.parent.name for p in out.glob("*/result.json")) == sorted(SOURCES)
    assert not list(out.glob("*/.*.json.*")), "a partial write was left behind"
    assert comparable(out) == comparable(sequential)
    assert gradebook(cli, out) == gradebook(cli, sequential)


def test_rerun_keeps_results_and_regrade_forces(tmp_path, cli):
    students = tmp_path / "class"
    for name in ("ana", "ben"):
        (students / name).mkdir(parents=True)
        (students / name / "toy.py").write_text(GOOD)
    out = tmp_path / "out"
    grade(out, str(students), jobs=2)
    first = (out / "ana" / "result.json").read_text()
    (students / "ben" / "toy.py").write_text(BAD)  # ben resubmits: graded again, ana is kept
    again = grade(out, str(students), jobs=2)
    assert "ana: 20/20 graded (already graded, kept)" in again.stdout
    assert "ben: 0/20 graded" in again.stdout and "ben: 0/20 graded (already" not in again.stdout
    assert (out / "ana" / "result.json").read_text() == first
    forced = grade(out, str(students), "--regrade", jobs=1)
    assert "kept" not in forced.stdout
    assert json.loads((out / "ana" / "result.json").read_text())["finished_at"] >= json.loads(first)["finished_at"]


def test_duplicate_student_ids_are_refused_before_grading(tmp_path, cli):
    for folder in ("a", "b"):
        (tmp_path / folder / "zoe").mkdir(parents=True)
        (tmp_path / folder / "zoe" / "toy.py").write_text(GOOD)
    completed = cli("--config", CONFIG, "grade", "a99", str(tmp_path / "a" / "zoe"), str(tmp_path / "b" / "zoe"),
                    "--out", str(tmp_path / "out"))
    assert completed.returncode == 2
    assert "several submissions are named the same (zoe:" in completed.stderr
    assert "NAME=PATH" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "out" / "zoe").exists()


def test_late_submissions_from_a_manifest_lose_points(tmp_path, cli):
    students = tmp_path / "class"
    for name in ("early", "grace", "two_days", "too_late"):
        (students / name).mkdir(parents=True)
        (students / name / "toy.py").write_text(GOOD)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("student,submitted_at\n"  # due 2025-03-01T23:59:00+08:00, grace 10 min, 10%/day, 3 days
                        "early,2025-03-01T20:00:00+08:00\ngrace,2025-03-02T00:05:00+08:00\n"
                        "two_days,2025-03-03T12:00:00+08:00\ntoo_late,2025-03-10T09:00:00+08:00\n")
    out = tmp_path / "out"
    untimed = cli("--config", CONFIG, "grade", "a99", str(students), "--out", str(out))
    assert "late policy not applied: a99_toy is due 2025-03-01T23:59:00+08:00; give --manifest" in untimed.stdout
    # The manifest arrives later: nothing is graded again, the late policy is applied to the kept results.
    completed = cli("--config", CONFIG, "grade", "a99", str(students), "--out", str(out), "--manifest", str(manifest))
    assert completed.returncode == 0, completed.stderr
    assert "graded 0 in" in completed.stdout and "4 kept from a previous run" in completed.stdout
    assert "two_days: 20/20 graded, 2 day(s) late: final 16 (already graded, kept)" in completed.stdout
    late = {name: json.loads((out / name / "result.json").read_text())["late"] for name in ("early", "grace", "two_days", "too_late")}
    assert late["early"]["final_score"] == 20 and late["grace"]["days_late"] == 0
    assert late["two_days"]["penalty_percent"] == 20 and late["two_days"]["source"] == "manifest"
    assert late["too_late"]["final_score"] == 0
    rows = {row["student"]: row for row in csv.DictReader(gradebook(cli, out).splitlines())}
    assert rows["two_days"] == {"student": "two_days", "score": "20", "max": "20", "late_penalty": "4", "final": "16",
                                "status": "graded"}
    assert rows["too_late"]["final"] == "0" and rows["early"]["final"] == "20"


def test_progress_bar_on_a_terminal(tmp_path):
    import pty

    (tmp_path / "class" / "kim").mkdir(parents=True)
    (tmp_path / "class" / "kim" / "toy.py").write_text(GOOD)
    (tmp_path / "class" / "lee.py").write_text(BAD)
    controller, terminal = pty.openpty()
    child = subprocess.Popen([sys.executable, "-m", "autograder", "--config", CONFIG, "grade", "a99",
                              str(tmp_path / "class"), "--out", str(tmp_path / "out")],
                             cwd=ROOT, stdin=terminal, stdout=terminal, stderr=terminal, env=dict(os.environ, TERM="xterm"))
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    text = output.decode(errors="replace")
    assert child.wait(timeout=300) == 0, text
    assert "\r" in text and "2/2" in text and "ETA" in text and "/s" in text and "failures 0" in text
    assert "[1/2]" not in text  # plain lines are for logs, not terminals


def test_a_reader_that_stops_reading_does_not_stop_the_batch(tmp_path):
    for name, source in (("uma", GOOD), ("vic", BAD), ("wes", GOOD)):
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / "toy.py").write_text(source)
    out = tmp_path / "out"
    batch = subprocess.Popen([sys.executable, "-m", "autograder", "--config", CONFIG, "grade", "a99",
                              str(tmp_path / "class"), "--out", str(out), "-j", "1"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert batch.stdout.readline().startswith("grading 3 submission(s)")
    batch.stdout.close()  # like `autograder grade ... | head -1`
    assert batch.wait(timeout=300) == 0
    assert "Traceback" not in batch.stderr.read()
    assert sorted(p.parent.name for p in out.glob("*/result.json")) == ["uma", "vic", "wes"]


def test_a_second_grade_into_the_same_results_folder_is_refused(tmp_path, cli):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".grade.lock", "a+") as held:  # as a running `grade` holds it
        held.write("4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        completed = cli("--config", CONFIG, "grade", "a99", str(TOY_COURSE / "subs" / "good"), "--out", str(out))
    assert completed.returncode == 2
    assert "another `autograder grade` (pid 4242) is writing to" in completed.stderr and "give another --out" in completed.stderr
    assert not (out / "good").exists()
