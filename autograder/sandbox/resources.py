"""Caps on the trusted side's own resources, charged to the submission being graded.

The trusted per-submission test process holds what the worker sends (replies, callback
arguments); a cap of its own turns a submission that floods it into a MemoryError inside that
submission's test (classified as its failure), never into an exhausted machine for the batch.
"""
from __future__ import annotations

import resource


def limit_trusted_memory(megabytes: int) -> bool:
    """Cap this process's heap and private mappings (RLIMIT_DATA: address space reserved by
    libraries such as CUDA is not counted). Returns whether the cap is in force."""
    limit = int(megabytes) << 20
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft != resource.RLIM_INFINITY and soft <= limit:
            return True
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
        return True
    except (ValueError, OSError):
        return False
