"""Rank groups fail one call at a time: a rank that raises, dies or deadlocks costs that call,
with a message naming the rank, and no rank process outlives its group."""
import os
import textwrap
import time
from pathlib import Path

import pytest

from autograder.pipeline.warm_pool import WarmPool
from autograder.runtime.isolation import UID_BASE
from autograder.sandbox.errors import StudentError, StudentTimeout, WorkerCrashed
from autograder.sandbox.isolation import detect_isolation
from autograder.sandbox.ranks import RankGroup
from autograder.sandbox.worker import WorkerSpec

pytestmark = pytest.mark.skipif(detect_isolation().mode != "root", reason="rank groups need the root isolation mode")

MISBEHAVING = '''
import os
import time
import torch
import torch.distributed as dist

def ring(x):
    """A correct little ring step: send right, receive from the left."""
    rank, p = dist.get_rank(), dist.get_world_size()
    incoming = torch.empty_like(x)
    request = dist.isend(x, (rank + 1) % p)
    dist.recv(incoming, (rank - 1) % p)
    request.wait()
    return incoming

def raises_on(bad_rank):
    if dist.get_rank() == bad_rank:
        raise ValueError("rank-specific failure")
    dist.recv(torch.empty(1), bad_rank)      # the others wait for the failed rank: they must be stopped
    return True

def dies_on(bad_rank):
    if dist.get_rank() == bad_rank:
        os._exit(3)
    dist.recv(torch.empty(1), bad_rank)
    return True

def deadlock():
    """Everyone receives first: nobody ever sends."""
    dist.recv(torch.empty(1), (dist.get_rank() - 1) % dist.get_world_size())
    return True
'''


@pytest.fixture(scope="module")
def pool():
    with WarmPool(("numpy", "torch", "torch.distributed")) as warm:
        yield warm


@pytest.fixture
def spec(tmp_path, pool):
    (tmp_path / "misbehaving.py").write_text(textwrap.dedent(MISBEHAVING))
    return WorkerSpec(submission_dir=tmp_path, module="misbehaving", preload=("numpy", "torch", "torch.distributed"),
                      zygote=str(pool.directory / "zygote.sock"))


def rank_processes(group):
    """Outer pids of the group's workers and holder, and the uids its sandboxed ranks run under."""
    pids = [session.worker.process.pid for session in group.sessions] + [group.network.holder.pid]
    return pids, {UID_BASE + pid for pid in pids[:-1]}


def alive(pids, uids):
    left = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "")
            if uid_line and int(uid_line.split()[1]) in uids:
                left.append(int(entry))
    return left


def test_a_correct_call_runs_in_every_rank(spec):
    import torch

    with RankGroup(spec, 3, call_seconds=20) as group:
        results = group.call("ring", [(torch.full((2,), float(r)),) for r in range(3)])
    assert [r.tolist() for r in results] == [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]


def test_a_rank_that_raises_costs_the_call_and_is_named(spec):
    with RankGroup(spec, 3, call_seconds=20) as group:
        started = time.monotonic()
        with pytest.raises(StudentError) as caught:
            group.call("raises_on", [(1,)] * 3)
        assert time.monotonic() - started < 10        # the waiting ranks were stopped, not waited for
    assert caught.value.type_name == "ValueError" and "rank 1 of 3" in caught.value.message


def test_a_rank_that_dies_costs_the_call_and_is_named(spec):
    with RankGroup(spec, 3, call_seconds=20) as group:
        with pytest.raises(WorkerCrashed, match="rank 2 of 3"):
            group.call("dies_on", [(2,)] * 3)


def test_a_deadlock_times_out_and_every_rank_is_gone_after(spec):
    group = RankGroup(spec, 2, call_seconds=3)
    pids, uids = rank_processes(group)
    assert alive(pids, uids)
    started = time.monotonic()
    with pytest.raises(StudentTimeout, match="deadlock"):
        group.call("deadlock", [(), ()])
    assert time.monotonic() - started < 15
    group.close()
    deadline = time.monotonic() + 10
    while alive(pids, uids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(pids, uids) == []


def test_after_a_failed_group_the_next_one_works(spec):
    import torch

    with RankGroup(spec, 2, call_seconds=20) as group:
        with pytest.raises(WorkerCrashed):
            group.call("dies_on", [(0,)] * 2)
    with RankGroup(spec, 2, call_seconds=20) as group:
        assert [r.tolist() for r in group.call("ring", [(torch.ones(1),), (torch.zeros(1),)])] == [[0.0], [1.0]]
