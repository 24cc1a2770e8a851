"""What a hung function costs: an a04 submission whose adamw_step loops forever, graded before and after.

The submission is the reference with one change: adamw_step never returns. Every test that calls
it used to wait the full call limit (30 s); with call budgets the first call waits the ceiling and
later calls get max(2 s, 5 x the reference's time). Results go to bench/results/hung_function.json.

    .venv/bin/python bench/hung_function.py --before /path/to/checkout-before-the-change
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANG = "    while True:  # the bug: this step never returns\n        pass\n"


def hung_submission(into: Path) -> Path:
    source = (ROOT / "solutions" / "a04_optimizers" / "optimizers.py").read_text()
    head, tail = source.split("def adamw_step(", 1)
    signature, body = tail.split('    """', 1)
    folder = into / "hung_adamw"
    folder.mkdir(parents=True)
    (folder / "optimizers.py").write_text(head + "def adamw_step(" + signature + HANG + '    """' + body)
    return folder


def grade(repo: Path, submission: Path, out: Path) -> dict:
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder", "grade", "a04_optimizers", f"hung_adamw={submission}",
                    "--out", str(out), "-j", "1"], cwd=repo, capture_output=True, text=True)
    wall = time.perf_counter() - begin
    result = json.loads((out / "hung_adamw" / "result.json").read_text())
    timed_out = [t for t in result["tests"] if t["status"] == "timeout"]
    return {"wall_s": round(wall, 1), "submission_s": result["duration_seconds"], "score": result["score"],
            "tests_timed_out": len(timed_out), "feedback_examples": sorted({t["feedback"] for t in timed_out})[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None, help="a checkout of the grader before call budgets")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "hung_function.json"))
    options = parser.parse_args()
    record = {}
    with tempfile.TemporaryDirectory(prefix="bench-hung-") as scratch:
        submission = hung_submission(Path(scratch))
        ways = ([("before", Path(options.before))] if options.before else []) + [("after", ROOT)]
        for label, repo in ways:
            record[label] = grade(repo, submission, Path(scratch) / f"out-{label}")
            print(label, json.dumps(record[label]), flush=True)
    Path(options.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
