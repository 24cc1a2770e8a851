"""How long a student waits for `autograder check`: the first call (it starts the check server), then warm calls.

A copy of the assignment's release folder holds the reference module (all public tests pass);
`autograder check <id>` runs in it as a student runs it, N times in a row, then once more with
the check server off (AUTOGRADER_CHECK_SERVER=0: what every call cost before the server). The
server is stopped at the end. Results go to bench/results/check_latency.json.

    .venv/bin/python bench/check_latency.py --assignment a04_optimizers --calls 5
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def servers() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"autograder.commands.check.server" in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def timed_check(folder: Path, assignment: str, server: bool) -> tuple[float, str]:
    env = dict(os.environ, AUTOGRADER_CHECK_SERVER="1" if server else "0")
    begin = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "autograder", "check", assignment], cwd=folder, env=env,
                               capture_output=True, text=True)
    return time.perf_counter() - begin, completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="a04_optimizers")
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "check_latency.json"))
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from autograder.course.reader import load_course

    course = load_course(ROOT / "grading.yaml")
    target = course.assignment(options.assignment)
    before = servers()
    with tempfile.TemporaryDirectory(prefix="bench-check-") as scratch:
        folder = Path(shutil.copytree(ROOT / "assignments" / target.id, Path(scratch) / target.id))
        shutil.copyfile(course.solution_dir(target) / target.module, folder / target.module)
        try:
            warm = [timed_check(folder, target.id, server=True) for _ in range(options.calls)]
        finally:
            for pid in servers() - before:
                os.kill(pid, signal.SIGTERM)
        local = timed_check(folder, target.id, server=False)
    record = {"assignment": target.id, "first_call_s": round(warm[0][0], 2),
              "warm_calls_s": [round(seconds, 2) for seconds, _ in warm[1:]],
              "without_server_s": round(local[0], 2), "answer": warm[-1][1],
              "answers_identical": len({answer for _, answer in warm} | {local[1]}) == 1,
              "load_average_at_end": os.getloadavg()}
    print(json.dumps(record, indent=1))
    Path(options.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
