"""Rank groups: the ranks of one group reach each other over loopback, and nothing else
reaches them or is reached by them; every collective is refused inside a rank."""
import socket
import textwrap
from pathlib import Path

import pytest

from autograder.course.reader import load_course
from autograder.pipeline.warm_pool import WarmPool
from autograder.sandbox.isolation import detect_isolation
from autograder.sandbox.ranks import RankGroup
from autograder.sandbox.worker import WorkerSpec

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(detect_isolation().mode != "root", reason="rank groups need the root isolation mode")

NETWORK_SPY = '''
import socket
import threading

def exchange(rank, port):
    """Rank 0 accepts one connection and returns what it read; the others connect and send their rank."""
    if rank == 0:
        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen(8)
            server.settimeout(15)
            connection, _ = server.accept()
            return connection.recv(64).decode()
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as client:
                client.sendall(f"hello from rank {rank}".encode())
                return "sent"
        except OSError:
            import time
            time.sleep(0.05)
    return "never connected"

def interfaces():
    return sorted(name for _, name in socket.if_nameindex())

def reach(host, port):
    try:
        with socket.create_connection((host, port), timeout=2):
            return "connected"
    except OSError as error:
        return type(error).__name__

_servers = []

def listen_in_background(port):
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen(8)
    _servers.append(server)
    threading.Thread(target=lambda: [server.accept() for _ in range(8)], daemon=True).start()
    return True
'''

COLLECTIVE_TRICKS = '''
import importlib
import torch
import torch.distributed as dist
from torch.distributed import all_reduce as taken_at_import
from torch.distributed.distributed_c10d import all_gather as c10d_all_gather

def _t():
    return torch.ones(4)

TRICKS = {
    "all_reduce": lambda: dist.all_reduce(_t()),
    "alias taken at import": lambda: taken_at_import(_t()),
    "getattr": lambda: getattr(dist, "all_" + "reduce")(_t()),
    "distributed_c10d.all_reduce": lambda: importlib.import_module("torch.distributed.distributed_c10d").all_reduce(_t()),
    "all_gather (c10d alias)": lambda: c10d_all_gather([_t() for _ in range(dist.get_world_size())], _t()),
    "all_gather_into_tensor": lambda: dist.all_gather_into_tensor(torch.ones(4 * dist.get_world_size()), _t()),
    "reduce_scatter": lambda: dist.reduce_scatter(_t(), [_t() for _ in range(dist.get_world_size())]),
    "reduce_scatter_tensor": lambda: dist.reduce_scatter_tensor(_t(), torch.ones(4 * dist.get_world_size())),
    "broadcast": lambda: dist.broadcast(_t(), 0),
    "reduce": lambda: dist.reduce(_t(), 0),
    "all_to_all_single": lambda: dist.all_to_all_single(_t(), _t()),
    "all_to_all": lambda: dist.all_to_all([_t()] * dist.get_world_size(), [_t()] * dist.get_world_size()),
    "functional all_reduce": lambda: importlib.import_module("torch.distributed._functional_collectives").all_reduce(_t(), "sum", [0, 1]),
    "autograd-aware all_reduce": lambda: importlib.import_module("torch.distributed.nn.functional").all_reduce(_t()),
    "ProcessGroup.allreduce (C++ method)": lambda: dist.group.WORLD.allreduce([_t()]).wait(),
    "ProcessGroup.allgather (C++ method)": lambda: dist.group.WORLD.allgather([[_t(), _t()]], [_t()]).wait(),
    "ProcessGroup.broadcast (C++ method)": lambda: dist.group.WORLD.broadcast([_t()]).wait(),
}

def outcomes():
    results = {}
    for name, trick in TRICKS.items():
        try:
            trick()
            results[name] = "ran"
        except Exception as error:
            results[name] = "forbidden" if type(error).__name__ == "ForbiddenCallError" else type(error).__name__
    return results

def point_to_point(rank):
    """send/recv still work: rank 0 sends to rank 1."""
    t = torch.full((3,), 7.0) if rank == 0 else torch.zeros(3)
    if rank == 0:
        dist.send(t, 1)
    else:
        dist.recv(t, 0)
    return t
'''


@pytest.fixture(scope="module")
def course():
    return load_course(str(ROOT / "grading.yaml"))


@pytest.fixture(scope="module")
def pool(course):
    with WarmPool(course.assignment("a09").preload) as warm:
        yield warm


def spec_for(tmp_path, pool, course, source, name="spy"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "spy.py").write_text(textwrap.dedent(source))
    a09 = course.assignment("a09")
    return WorkerSpec(submission_dir=folder, module="spy", preload=a09.preload, forbidden_calls=a09.forbidden.calls,
                      forbidden_ops=a09.forbidden.ops,
                      limits=a09.limits, assignment="a09", zygote=str(pool.directory / "zygote.sock"))


def test_ranks_reach_each_other_over_loopback(tmp_path, pool, course):
    with RankGroup(spec_for(tmp_path, pool, course, NETWORK_SPY), 3, call_seconds=30) as group:
        results = group.call("exchange", [(r, 4000) for r in range(3)])
    assert results[0].startswith("hello from rank ")
    assert sorted(results[1:]) in (["never connected", "sent"], ["sent", "sent"])


def test_a_rank_sees_only_loopback_and_reaches_nothing_outside(tmp_path, pool, course):
    with socket.socket() as host_server:                   # a service on the grader's own loopback
        host_server.bind(("127.0.0.1", 0))
        host_server.listen(1)
        port = host_server.getsockname()[1]
        with RankGroup(spec_for(tmp_path, pool, course, NETWORK_SPY), 2, call_seconds=30) as group:
            assert group.call("interfaces", [(), ()]) == [["lo"], ["lo"]]
            assert group.call("reach", [("127.0.0.1", port), ("1.1.1.1", 53)]) == ["ConnectionRefusedError", "OSError"]


def test_nothing_outside_reaches_a_rank(tmp_path, pool, course):
    spy = spec_for(tmp_path, pool, course, NETWORK_SPY)
    with RankGroup(spy, 2, call_seconds=30) as group, RankGroup(spy, 2, call_seconds=30) as other:
        assert group.call("listen_in_background", [(4100,), (4101,)]) == [True, True]
        assert group.call("reach", [("127.0.0.1", 4101), ("127.0.0.1", 4100)]) == ["connected", "connected"]
        # another group's ranks (their own namespace) and the grader's host cannot connect
        assert other.call("reach", [("127.0.0.1", 4100), ("127.0.0.1", 4101)]) == ["ConnectionRefusedError"] * 2
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex(("127.0.0.1", 4100)) != 0


def test_every_collective_is_refused_and_point_to_point_works(tmp_path, pool, course):
    with RankGroup(spec_for(tmp_path, pool, course, COLLECTIVE_TRICKS), 2, call_seconds=30) as group:
        outcomes = group.call("outcomes", [(), ()])
        moved = group.call("point_to_point", [(0,), (1,)])
    for rank_outcomes in outcomes:
        assert rank_outcomes == {name: "forbidden" for name in rank_outcomes}, rank_outcomes
    assert moved[1].tolist() == [7.0, 7.0, 7.0]
