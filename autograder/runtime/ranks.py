"""Inside a rank worker: join the group's torch.distributed process group before the submission loads.

A rank worker is an ordinary sandboxed worker that shares one private network namespace
(loopback only) with the other ranks of its group. After the isolation measures are in force
and before any student code is imported, it joins a gloo process group whose store rank 0
hosts on 127.0.0.1, so the student's function runs "in every rank of an initialised
process group". A failure here is the grader's or the machine's, never the student's.
"""
from __future__ import annotations

import datetime
import os


def join_process_group(rank: dict) -> dict:
    """Join the gloo group described by `rank` (rank, world_size, port, timeout_seconds)."""
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"        # the namespace has no other interface
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{int(rank['port'])}", rank=int(rank["rank"]),
        world_size=int(rank["world_size"]), timeout=datetime.timedelta(seconds=float(rank.get("timeout_seconds", 30))),
    )
    return {"rank": dist.get_rank(), "world_size": dist.get_world_size(), "backend": str(dist.get_backend())}
