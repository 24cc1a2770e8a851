"""Which isolation measures this machine allows, detected once per batch, and the warning
printed when the grader's own files cannot be hidden from student code."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.runtime.contract import IsolationMeasures
from autograder.sandbox.environment import (
    BOOTSTRAP,
    ISOLATION_ENV,
    MODE_ENV,
    WORKER_ENVIRONMENT,
    runtime_copy,
)


def _candidate_modes() -> list[str]:
    forced = os.environ.get(MODE_ENV, "").strip()
    if forced:
        return [forced]
    return (["root"] if os.geteuid() == 0 else []) + ["userns", "none"]


@functools.lru_cache(maxsize=1)
def _detect(modes: tuple[str, ...]) -> IsolationMeasures:
    with tempfile.TemporaryDirectory(prefix="autograder-probe-") as scratch:
        runtime = runtime_copy(Path(scratch))
        request = json.dumps({"modes": list(modes), "scratch": str(Path(scratch) / "try")})
        code = BOOTSTRAP.replace("from _autograder_runtime.{module} import main; main()",
                                 "import runpy; runpy.run_module('_autograder_runtime.isolation', run_name='__main__')")
        completed = subprocess.run([sys.executable, "-I", "-c", code, request, str(runtime)], capture_output=True,
                                   text=True, env=dict(WORKER_ENVIRONMENT), timeout=60)
    try:
        report = json.loads(completed.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {"error": (completed.stdout + completed.stderr)[-500:]}
    if "ok" not in report:
        return IsolationMeasures(notes=[f"isolation probe failed: {report.get('error')}"])
    return IsolationMeasures.from_measures(report["ok"])


def detect_isolation() -> IsolationMeasures:
    """What this machine allows: the batch's probed plan if inherited, else probed once (~0.1 s)."""
    inherited = os.environ.get(ISOLATION_ENV)
    if inherited:
        try:
            return IsolationMeasures.from_measures(json.loads(inherited))
        except (ValueError, TypeError):
            pass
    return _detect(tuple(_candidate_modes()))


def hidden_files_warning(isolation: IsolationMeasures) -> str:
    """The loud warning printed when the sandbox cannot hide the grader's files ('' if it can)."""
    if isolation.hidden_paths:
        return ""
    bar = "!" * 78
    return (f"{bar}\nWARNING: student code can READ the hidden tests, the reference solutions and grading.yaml\n"
            f"on this machine (isolation mode '{isolation.mode}': no mount namespace). Grade as root, or allow\n"
            f"user namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 also\n"
            f"kernel.apparmor_restrict_unprivileged_userns=0), before trusting these results.\n"
            + "".join(f"  - {note}\n" for note in isolation.notes) + bar)
