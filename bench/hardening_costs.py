"""Benchmark: the cost per submission of each hardening measure of issue 10.

Each measure is timed on its own, with and without it where it can be switched off:
worker start (isolation with the capped scratch, seccomp, audit hook, dispatcher disarm), a call's
round trip (request ids, validation, byte budgets), the audit hook's cost per audited event, the
static allow-list scan per submission, the trusted memory cap, the cleanup of a worker's folder.
Results go to bench/results/hardening_costs.json.

    .venv/bin/python bench/hardening_costs.py
"""
from __future__ import annotations

import ast
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "--baseline" in sys.argv  # time /work/main's code instead, for the same measures that exist there
sys.path.insert(0, "/work/main" if BASELINE else str(ROOT))

from autograder.course.model import Limits  # noqa: E402
from autograder.sandbox.remote import StudentModule  # noqa: E402
from autograder.sandbox.session import CallLimits, Session  # noqa: E402
from autograder.sandbox.worker import WorkerSpec  # noqa: E402

SOURCE = '''
import sys

def ping(x):
    return x

def audited_events(n):
    """n audited events the hook sees and lets pass (its cost per event, plus the loop's)."""
    for _ in range(n):
        sys.audit("bench.event")
    return n
'''


def _median_ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 3)


def worker_start(preload: tuple, repeat: int, **spec) -> float:
    """Median seconds from nothing to a first answered call."""
    times = []
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "sub").mkdir()
        (Path(scratch) / "sub" / "bench.py").write_text(SOURCE)
        for _ in range(repeat):
            session = Session(WorkerSpec(Path(scratch) / "sub", "bench", preload=preload, zygote=None, **spec),
                              CallLimits(120, 240))
            session.begin_test()
            start = time.perf_counter()
            StudentModule(session).ping(1)
            times.append(time.perf_counter() - start)
            session.close()
    return statistics.median(times)


def calls(repeat: int, **spec) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "sub").mkdir()
        (Path(scratch) / "sub" / "bench.py").write_text(SOURCE)
        session = Session(WorkerSpec(Path(scratch) / "sub", "bench", zygote=None, **spec), CallLimits(120, 240))
        session.begin_test()
        student = StudentModule(session)
        student.ping(0)
        import numpy as np

        small, big = [], []
        array = np.ones(1 << 20)
        for _ in range(repeat):
            start = time.perf_counter()
            student.ping(1)
            small.append(time.perf_counter() - start)
            start = time.perf_counter()
            student.ping(array)
            big.append(time.perf_counter() - start)
        events = 200_000
        start = time.perf_counter()
        student.audited_events(events)
        per_event = (time.perf_counter() - start) / events
        session.close()
    return {"call_round_trip_ms": _median_ms(small), "call_8MiB_array_ms": _median_ms(big),
            "audited_event_us": round(1e6 * per_event, 3)}


def disarm_cost() -> float:
    code = textwrap.dedent('''
        import sys, time
        sys.path.insert(0, sys.argv[1])
        import torch
        from autograder.runtime.guard import disarm_ops
        start = time.perf_counter()
        names = disarm_ops(["aten::_fused_*"])
        print(time.perf_counter() - start, len(names))
    ''')
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, check=True).stdout
    return float(out.split()[0])


def seccomp_cost() -> float:
    code = textwrap.dedent('''
        import ctypes, sys, time
        sys.path.insert(0, sys.argv[1])
        ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS, as the worker's isolation sets it
        import pyseccomp
        from autograder.runtime.seccomp import install
        start = time.perf_counter()
        installed = install()
        print(time.perf_counter() - start, installed["seccomp"])
    ''')
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, check=True).stdout
    return float(out.split()[0])


def scan_cost(repeat: int = 20) -> float:
    from autograder.pipeline.surface import surface_problems

    sources = [p.read_text() for p in sorted(ROOT.glob("solutions/*/*.py"))]
    start = time.perf_counter()
    for _ in range(repeat):
        for source in sources:
            surface_problems(ast.parse(source), "x.py")
    return (time.perf_counter() - start) / (repeat * max(1, len(sources)))


def cleanup_cost() -> float:
    from autograder.sandbox.cleanup import remove_tree

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "tree"
        for i in range(50):
            (root / f"d{i}").mkdir(parents=True)
            for j in range(20):
                (root / f"d{i}" / f"f{j}").write_bytes(b"x" * 100)
        start = time.perf_counter()
        remove_tree(root)
        return time.perf_counter() - start


def main() -> None:
    repeat = 5
    if BASELINE:
        results = {"baseline": "/work/main", "worker_start_numpy_ms": _median_ms([worker_start(("numpy",), repeat)]),
                   "calls": calls(50)}
        out = ROOT / "bench" / "results" / "hardening_costs_baseline.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
        return
    results = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                    "platform": platform.platform()},
        "worker_start_numpy_all_measures_ms": _median_ms([worker_start(("numpy",), repeat)]),
        "worker_start_numpy_without_audit_hook_ms": _median_ms([worker_start(("numpy",), repeat, audit_hook=False)]),
        "worker_start_numpy_scratch_64mb_ms": _median_ms([worker_start(("numpy",), repeat,
                                                                        limits=Limits(scratch_mb=64))]),
        "dispatcher_disarm_aten_fused_ms": round(1000 * disarm_cost(), 3),
        "seccomp_install_ms": round(1000 * seccomp_cost(), 3),
        "surface_scan_per_file_ms": round(1000 * scan_cost(), 3),
        "cleanup_1000_files_ms": round(1000 * cleanup_cost(), 3),
        "calls_with_audit_hook": calls(50),
        "calls_without_audit_hook": calls(50, audit_hook=False),
    }
    out = ROOT / "bench" / "results" / "hardening_costs.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
