"""Benchmark: what grading through a Slurm job array costs over local grading, per submission.

Grades N copies of an assignment's example submissions twice on the same machine: locally
(`autograder grade -j J`) and as a job array on a one-node Slurm started by scripts/slurm.sh
(`--executor slurm --cpus-per-task C --shard-size S`, so J/C tasks run at once and the two
ways use the same cores). Records both wall times, the overhead per submission
((array - local) / N), the ratio array / local, and checks that every score is identical.

    .venv/bin/python bench/slurm_overhead.py --copies 10 --out bench/results/slurm_a04_40.json
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("correct_alt", "partial", "adam_no_bias_correction", "uses_torch_optim")


def run(command: list[str], env: dict) -> float:
    started = time.monotonic()
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command[:6])} ... exited {completed.returncode}:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    return time.monotonic() - started


def busy_seconds(out: Path) -> float:
    """The time spent grading submissions (each result's duration_seconds), summed."""
    return sum(json.loads(path.read_text())["duration_seconds"] for path in out.glob("*/result.json"))


def scores(out: Path) -> dict[str, float]:
    return {path.parent.name: json.loads(path.read_text())["score"] for path in sorted(out.glob("*/result.json"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="a04_optimizers")
    parser.add_argument("--copies", type=int, default=10, help="copies of each of the 4 examples (10: 40 submissions)")
    parser.add_argument("--jobs", type=int, default=2, help="local -j; the array runs jobs/cpus tasks at once")
    parser.add_argument("--cpus-per-task", type=int, default=1)
    parser.add_argument("--shard-size", type=int, default=5)
    parser.add_argument("--array-first", action="store_true", help="run the array before local grading")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "slurm_a04_40.json"))
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
    env = dict(os.environ, AUTOGRADER_SLURM_DIR=str(scratch / "slurm"), AUTOGRADER_SLURM_PORT="6917",
               PYTHONDONTWRITEBYTECODE="1")
    started = subprocess.run(["bash", "scripts/slurm.sh", "start"], cwd=ROOT, env=env, capture_output=True, text=True)
    if started.returncode != 0:
        sys.exit(f"Slurm did not start: {started.stderr.strip()}")
    env["SLURM_CONF"] = str(scratch / "slurm" / "slurm.conf")
    try:
        submissions = scratch / "submissions"
        examples = ROOT / "examples" / "submissions" / args.assignment
        for copy in range(args.copies):
            for name in EXAMPLES:
                shutil.copytree(examples / name, submissions / f"{name}_{copy:02d}")
        count = len(EXAMPLES) * args.copies
        python = [sys.executable, "-m", "autograder", "grade", args.assignment, str(submissions)]
        load = os.getloadavg()
        ways = {"local": python + ["--out", str(scratch / "local"), "-j", str(args.jobs)],
                "array": python + ["--out", str(scratch / "array"), "--executor", "slurm", "--cpus-per-task",
                                   str(args.cpus_per_task), "--shard-size", str(args.shard_size), "--mem", "1G"]}
        walls = {way: run(ways[way], env) for way in (["array", "local"] if args.array_first else ["local", "array"])}
        local, array = walls["local"], walls["array"]
        # Beyond grading: what the cores spent outside the submissions' own grading (wall x cores - busy), per
        # submission; less sensitive than the walls to the machine's load changing between the two runs.
        beyond = {way: (walls[way] * args.jobs - busy_seconds(scratch / way)) / count for way in walls}
        same = scores(scratch / "local") == scores(scratch / "array")
        tasks = -(-count // args.shard_size)
        record = {
            "what": f"{count} submissions of {args.assignment}, local -j {args.jobs} vs a Slurm array of {tasks} task(s) "
                    f"of {args.shard_size} with {args.cpus_per_task} CPU(s) each on one node",
            "submissions": count, "local_seconds": round(local, 1), "array_seconds": round(array, 1),
            "overhead_per_submission_seconds": round((array - local) / count, 2),
            "ratio_array_to_local": round(array / local, 3), "overhead_per_task_seconds": round((array - local) / tasks * (args.jobs // args.cpus_per_task), 1),
            "identical_scores": same, "order": "array first" if args.array_first else "local first",
            "beyond_grading_per_submission_seconds": {way: round(value, 2) for way, value in beyond.items()},
            "array_extra_beyond_grading_per_submission_seconds": round(beyond["array"] - beyond["local"], 2),
            "machine": {"cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                                     if line.startswith("model name")), platform.processor()),
                        "cores": os.cpu_count(), "load_average_at_start": load,
                        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(record, indent=2))
        if not same:
            sys.exit("the array's scores differ from local grading")
    finally:
        subprocess.run(["bash", "scripts/slurm.sh", "stop"], cwd=ROOT, env=env)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
