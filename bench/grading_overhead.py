"""Benchmark: grade N copies of an assignment's example submissions three ways, in one run.

1. the tool with the warm pool (`autograder grade`, the default),
2. the tool with a fresh process per submission (AUTOGRADER_WARM=0),
3. a plain `pytest` process per submission (the suite with the grading plugin, nothing else),
recording per-submission overhead (wall time minus the suite's own compute, i.e. the time spent
inside tests), batch throughput against the compute floor (total compute / cores), peak memory
(PSS of the whole process tree) and the machine. Then the protocol's per-call round trip and the
sandbox's cost per worker start. Results go to bench/results/<name>.json.

    .venv/bin/python bench/grading_overhead.py --assignment a04 --copies 3 --jobs 2
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    import numpy
    import torch

    from autograder.sandbox.isolation import detect_isolation

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(int(memory) / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "load_average_at_start": os.getloadavg(),
            "isolation_mode": detect_isolation().mode, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


class TreeMemory(threading.Thread):
    """Samples the proportional set size (PSS) of a process and all its descendants; keeps the peak."""

    def __init__(self, root_pid: int):
        super().__init__(daemon=True)
        self.root_pid, self.peak, self.running = root_pid, 0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.sample())
            time.sleep(0.2)

    def sample(self) -> int:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        total, stack = 0, [self.root_pid]
        while stack:
            pid = stack.pop()
            stack.extend(children.get(pid, []))
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def stop(self) -> int:
        self.running = False
        self.join()
        return self.peak


def copies(assignment_dir: Path, names: list[str], count: int, into: Path) -> list[tuple[str, Path]]:
    items = []
    for index in range(count):
        for name in names:
            target = into / f"{name}-{index}"
            shutil.copytree(assignment_dir / name, target)
            items.append((target.name, target))
    return items


def summarise(raw: dict, compute: dict[str, float], floors: dict[str, float]) -> dict:
    """Figures of one way; `compute` is each submission's own compute (the least any way measured:
    with a fresh worker, its interpreter start and imports fall inside the first test); `floors` each
    submission's physical floor (its student compute plus the boundary's copies and round trips)."""
    overheads = [raw["per"][name][0] - compute[name] for name in raw["per"]]
    total = sum(compute.values())
    floor = total / raw["jobs"]
    per_submission = raw["wall"] * raw["jobs"] / len(raw["per"])
    physical = statistics.mean(floors[name] for name in raw["per"]) if floors else 0.0
    return {"time_per_submission_s": round(per_submission, 3), "physical_floor_per_submission_s": round(physical, 3),
            "time_per_submission_vs_physical_floor": round(per_submission / physical, 2) if physical else None,
            "trusted_server_memory_by_results_written": raw["server_memory"],
            "way": raw["way"], "submissions": len(overheads), "batch_wall_s": round(raw["wall"], 2),
            "throughput_per_min": round(60 * len(overheads) / raw["wall"], 2),
            "compute_total_s": round(total, 2), "compute_floor_s": round(floor, 2),
            "throughput_vs_floor": round(floor / raw["wall"], 3),
            "time_inside_tests_s": round(sum(c for _, c in raw["per"].values()), 2),
            "overhead_per_submission_s": {"median": round(statistics.median(overheads), 3),
                                          "mean": round(statistics.mean(overheads), 3),
                                          "max": round(max(overheads), 3)},
            "peak_memory_mib": round(raw["peak"] / 2**20, 1), "scores": raw["scores"]}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _rss(pid: int) -> int:
    try:
        return next(int(line.split()[1]) * 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


class ServerMemory(threading.Thread):
    """The trusted server's RSS (and its collect-once suite servers') each time another result is written."""

    def __init__(self, grade_pid: int, out: Path):
        super().__init__(daemon=True)
        self.grade_pid, self.out, self.running = grade_pid, out, True
        self.by_count: dict[int, dict] = {}
        self.first_seen: dict[int, float] = {}

    def run(self) -> None:
        while self.running:
            count = len(list(self.out.glob("*/result.json"))) if self.out.exists() else 0
            servers = [pid for pid in _children(self.grade_pid) if b"warm_pool" in _cmdline(pid)]
            if servers:
                children = _children(servers[0])
                for pid in children:
                    self.first_seen.setdefault(pid, time.monotonic())
                alive = [pid for pid in self.first_seen if pid in children]
                suite = min(alive, key=self.first_seen.__getitem__) if alive else None  # the longest-lived child
                if count and count not in self.by_count:
                    self.by_count[count] = {"server_rss_mib": round(_rss(servers[0]) / 2**20, 1),
                                            "suite_server_rss_mib": round(_rss(suite) / 2**20, 1) if suite else None}
            time.sleep(0.05)

    def stop(self) -> dict:
        self.running = False
        self.join()
        return {str(count): value for count, value in sorted(self.by_count.items())}


def run_tool(label: str, items, assignment: str, jobs: int, warm: bool, scratch: Path, *, env_extra: dict | None = None,
             repo: Path = ROOT) -> dict:
    out = scratch / f"out-{label.replace(' ', '_').replace(',', '')}"
    env = dict(os.environ, AUTOGRADER_WARM="1" if warm else "0", PYTHONDONTWRITEBYTECODE="1", **(env_extra or {}))
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "autograder", "grade", assignment,
                                *[f"{n}={p}" for n, p in items], "--out", str(out), "-j", str(jobs)],
                               cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(process.pid)
    memory.start()
    servers = ServerMemory(process.pid, out)
    servers.start()
    _, errors = process.communicate()
    wall = time.perf_counter() - start
    peak = memory.stop()
    server_memory = servers.stop()
    if process.returncode != 0:
        raise SystemExit(f"{label} failed:\n{errors[-2000:]}")
    per, floors, scores = [], {}, {}
    for name, _ in items:
        result = json.loads((out / name / "result.json").read_text())
        per.append((result["duration_seconds"], sum(t.get("duration", 0.0) for t in result["tests"])))
        timings = result.get("timings") or {}
        if timings:  # the physical floor: the student's compute and the boundary's copies and round trips
            floors[name] = timings.get("student", 0.0) + timings.get("boundary", 0.0) + timings.get("worker_start", 0.0)
        scores[name] = result["score"]
    return {"way": label, "wall": wall, "per": dict(zip([n for n, _ in items], per)), "jobs": jobs, "peak": peak,
            "scores": scores, "floors": floors, "server_memory": server_memory}


def run_plain_pytest(items, assignment: str, jobs: int, scratch: Path) -> dict:
    from autograder.course.reader import load_course

    course = load_course(ROOT / "grading.yaml")
    target = course.assignment(assignment)
    suite = course.suite_dir(target)
    env = dict(os.environ, AUTOGRADER_WARM="0", PYTHONDONTWRITEBYTECODE="1")

    def one(item):
        name, path = item
        outcomes = scratch / f"plain-{name}.jsonl"
        begin = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", str(suite), "-p", "autograder.harness.plugin", "-p", "no:cacheprovider",
                        "-q", "--assignment", target.id, "--course", str(course.path), "--submission", str(path),
                        "--outcomes", str(outcomes)], cwd=ROOT, env=env, capture_output=True)
        wall = time.perf_counter() - begin
        compute = sum(json.loads(line)["outcome"]["duration"] for line in outcomes.read_text().splitlines()
                      if '"outcome"' in line)
        return wall, compute

    memory = TreeMemory(os.getpid())
    memory.start()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        per = list(pool.map(one, items))
    wall = time.perf_counter() - start
    return {"way": "plain pytest per submission", "wall": wall, "per": dict(zip([n for n, _ in items], per)),
            "jobs": jobs, "peak": memory.stop(), "scores": {}, "floors": {}, "server_memory": {}}


def protocol_and_sandbox(calls: int = 2000, starts: int = 10) -> dict:
    """Round trip of one call (small and 1 MiB arguments); worker start per isolation mode, warm and fresh."""
    import numpy as np

    from autograder.pipeline.warm_pool import WarmPool
    from autograder.runtime.contract import IsolationMeasures
    from autograder.sandbox.remote import StudentModule
    from autograder.sandbox.session import CallLimits, Session
    from autograder.sandbox.worker import WorkerProcess, WorkerSpec

    folder = Path(tempfile.mkdtemp(prefix="bench-echo-"))
    (folder / "echo.py").write_text("def echo(x):\n    return x\n")
    report: dict = {"pipe_ping_pong_ms": _pipe_ping_pong()}
    pool = WarmPool(("numpy",))
    try:
        zygote = str(pool.directory / "zygote.sock")
        for way, socket_path in (("warm", zygote), ("fresh", None)):
            for mode in ("root", "userns", "none"):
                isolation = IsolationMeasures(mode=mode)
                spec = WorkerSpec(folder, "echo", preload=("numpy",), zygote=socket_path)
                times = []
                for _ in range(starts):
                    session = Session(spec, CallLimits(30, 60))
                    begin = time.perf_counter()
                    worker = WorkerProcess.start(spec, isolation)
                    session._await_isolation(worker)
                    worker.channel.receive(deadline=time.monotonic() + 60)
                    times.append(time.perf_counter() - begin)
                    session.worker, session.generation = worker, 1
                    if mode == "root" and way == "warm" and len(times) == 1:
                        student = StudentModule(session)
                        for label, argument in (("small", 1), ("array_1MiB", np.zeros(1 << 17))):
                            student.echo(argument)
                            begin = time.perf_counter()
                            for _ in range(calls if label == "small" else calls // 10):
                                student.echo(argument)
                            count = calls if label == "small" else calls // 10
                            report[f"round_trip_ms_{label}"] = round(1000 * (time.perf_counter() - begin) / count, 4)
                    session.close()
                report[f"worker_start_ms_{way}_{mode}"] = round(1000 * statistics.median(times), 1)
    finally:
        pool.close()
        shutil.rmtree(folder, ignore_errors=True)
    for way in ("warm", "fresh"):
        report[f"sandbox_extra_ms_per_worker_{way}"] = round(
            report[f"worker_start_ms_{way}_root"] - report[f"worker_start_ms_{way}_none"], 1)
    return report


def _pipe_ping_pong(rounds: int = 2000) -> float:
    """The machine's floor for a round trip: one byte each way between two processes over pipes."""
    there_r, there_w = os.pipe()
    back_r, back_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        for _ in range(rounds):
            os.write(back_w, os.read(there_r, 1))
        os._exit(0)
    begin = time.perf_counter()
    for _ in range(rounds):
        os.write(there_w, b"x")
        os.read(back_r, 1)
    elapsed = time.perf_counter() - begin
    os.waitpid(pid, 0)
    for fd in (there_r, there_w, back_r, back_w):
        os.close(fd)
    return round(1000 * elapsed / rounds, 4)


def _tune_malloc() -> None:
    """This process is the trusted side of the round-trip figures: give it the grader's malloc settings."""
    import ctypes

    libc = ctypes.CDLL(None)
    for option, value in ((-3, 32 << 20), (-1, 128 << 20), (-2, 16 << 20)):  # M_MMAP/TRIM_THRESHOLD, M_TOP_PAD
        libc.mallopt(option, value)


def _commit(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    _tune_malloc()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="a04_optimizers")
    parser.add_argument("--examples", nargs="*", default=["correct_alt", "adam_no_bias_correction"])
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-batches", action="store_true", help="only the protocol and sandbox figures")
    parser.add_argument("--skip-protocol", action="store_true", help="only the batches")
    parser.add_argument("--before", default=None, help="a checkout of the grader before a change: graded as one more way")
    parser.add_argument("--ways", default="warm,nocache,fresh,plain", help="which ways, of warm,nocache,fresh,plain")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "grading_overhead.json"))
    options = parser.parse_args()
    record = {"machine": machine(), "assignment": options.assignment, "examples": options.examples,
              "copies": options.copies, "jobs": options.jobs}
    if not options.skip_protocol:
        record["protocol_and_sandbox"] = protocol_and_sandbox()
        print(json.dumps(record["protocol_and_sandbox"], indent=1), flush=True)
    if not options.skip_batches:
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            scratch_path = Path(scratch)
            examples = ROOT / "examples" / "submissions" / options.assignment
            items = copies(examples, options.examples, options.copies, scratch_path / "subs")
            ways = options.ways.split(",")
            raw = []
            if options.before:
                raw.append(run_tool(f"tool before the change ({_commit(Path(options.before))}), warm pool", items,
                                    options.assignment, options.jobs, True, scratch_path, repo=Path(options.before)))
            if "warm" in ways:
                raw.append(run_tool("tool, warm pool", items, options.assignment, options.jobs, True, scratch_path))
            if "nocache" in ways:
                raw.append(run_tool("tool, warm pool, no oracle store", items, options.assignment, options.jobs, True,
                                    scratch_path, env_extra={"AUTOGRADER_ORACLE_CACHE": "0"}))
            if "fresh" in ways:
                raw.append(run_tool("tool, fresh process per submission", items, options.assignment, options.jobs, False,
                                    scratch_path))
            if "plain" in ways:
                raw.append(run_plain_pytest(items, options.assignment, options.jobs, scratch_path))
            compute = {name: min(way["per"][name][1] for way in raw) for name, _ in items}
            floors = {name: min(way["floors"][name] for way in raw if name in way["floors"]) for name, _ in items
                      if any(name in way["floors"] for way in raw)}
            record["ways"] = [summarise(way, compute, floors) for way in raw]
            for way in record["ways"]:
                print(json.dumps({k: v for k, v in way.items() if k != "scores"}), flush=True)
    Path(options.out).parent.mkdir(parents=True, exist_ok=True)
    Path(options.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
