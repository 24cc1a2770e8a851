"""Assignment 9 (Lecture 11): data, pipeline and tensor parallelism, simulated and for real.

Three ways to spread one training step over p devices ("ranks"):

- data parallelism: every rank holds the whole model and a slice of the batch; after the
  backward pass the gradients are summed over the ranks (an all-reduce). The ring
  all-reduce does it with every rank sending only 2 (p - 1) / p of its data.
- pipeline parallelism: the layers are cut into p stages; microbatches flow forward
  through the stages and their gradients flow back. A schedule says in which order each
  stage runs its forwards (F) and backwards (B); the idle time it leaves is the bubble.
- tensor parallelism: one layer's weight matrix is split across ranks (by rows or by
  columns), so each rank does 1/p of the matrix product (Megatron-LM).

Ranks are simulated in one process except in `ring_allreduce_dist`, which runs in p real
processes joined by a torch.distributed (gloo) process group.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor

# ============================================================================ data parallelism


def ring_allreduce(rank_tensors: list[Tensor]) -> tuple[list[Tensor], list[list[tuple[int, int, int]]]]:
    """Ring all-reduce of p equal-shaped tensors, simulated step by step.

    Each rank flattens its tensor and cuts it into p chunks as torch.tensor_split(flat, p)
    does (sizes differ by at most one; some are empty when numel < p).

    Reduce-scatter, steps t = 0 .. p-2: rank r sends chunk (r - t) % p to rank (r + 1) % p,
    which adds it to its own copy. After p - 1 steps rank r holds the full sum of chunk
    (r + 1) % p.
    All-gather, steps t = 0 .. p-2: rank r sends chunk (r + 1 - t) % p to rank (r + 1) % p,
    which overwrites its copy. After p - 1 more steps every rank holds every summed chunk.

    All sends of one step happen at once (each rank reads the values from before the step).
    Returns (the p summed tensors in the original shape, the log: for each of the 2 (p - 1)
    steps, the p transfers (src, dst, chunk) in rank order).
    """
    # BEGIN SOLUTION Task 1.1: ring all-reduce
    p = len(rank_tensors)
    shape = rank_tensors[0].shape
    chunks = [[c.clone() for c in torch.tensor_split(t.reshape(-1), p)] for t in rank_tensors]  # [rank][chunk]
    log = []
    for phase in ("reduce-scatter", "all-gather"):
        for t in range(p - 1):
            offset = 0 if phase == "reduce-scatter" else 1
            transfers = [(r, (r + 1) % p, (r + offset - t) % p) for r in range(p)]
            payloads = [chunks[src][chunk].clone() for src, _, chunk in transfers]   # sent simultaneously
            for (_, dst, chunk), payload in zip(transfers, payloads):
                chunks[dst][chunk] = chunks[dst][chunk] + payload if phase == "reduce-scatter" else payload
            log.append(transfers)
    return [torch.cat(rank_chunks).reshape(shape) for rank_chunks in chunks], log
    # END SOLUTION


def ring_allreduce_dist(tensor: Tensor) -> Tensor:
    """The same ring all-reduce for real: called in every rank of an initialised process group.

    Uses only point-to-point communication (dist.send/recv/isend/irecv; the collectives are
    forbidden). Each step a rank posts a non-blocking send of one chunk to its right
    neighbour and receives one chunk from its left neighbour, so no rank waits for a send
    that nobody receives (a ring of blocking sends would deadlock). Per rank the elements
    sent add up to 2 (p - 1) ceil(numel / p) at most: the bandwidth-optimal ring.
    Returns the sum over the ranks, in `tensor`'s shape and dtype.
    """
    # BEGIN SOLUTION Task 1.2: ring all-reduce across processes
    import torch.distributed as dist

    rank, p = dist.get_rank(), dist.get_world_size()
    chunks = [c.clone() for c in torch.tensor_split(tensor.reshape(-1), p)]
    right, left = (rank + 1) % p, (rank - 1) % p
    for phase in ("reduce-scatter", "all-gather"):
        offset = 0 if phase == "reduce-scatter" else 1
        for t in range(p - 1):
            send_chunk, recv_chunk = (rank + offset - t) % p, (rank + offset - t - 1) % p
            incoming = torch.empty_like(chunks[recv_chunk])
            request = dist.isend(chunks[send_chunk], right) if chunks[send_chunk].numel() else None
            if incoming.numel():     # every rank knows the chunk sizes: empty chunks are skipped on both sides
                dist.recv(incoming, left)
            if request is not None:
                request.wait()
            chunks[recv_chunk] = chunks[recv_chunk] + incoming if phase == "reduce-scatter" else incoming
    return torch.cat(chunks).reshape(tensor.shape)
    # END SOLUTION


# ============================================================================ pipeline parallelism
# An action is ("F", microbatch) or ("B", microbatch); with interleaving ("F", microbatch, chunk).
# A schedule is a list over stages of that stage's actions in execution order. Chunk c of
# stage s holds virtual stage c * p + s.


def gpipe_schedule(num_stages: int, num_microbatches: int) -> list[list[tuple]]:
    """GPipe: every stage runs all m forwards, then all m backwards (F0..F(m-1), B0..B(m-1)).

    Simple, but every stage keeps all m microbatches' activations until its backwards start.
    """
    # BEGIN SOLUTION Task 2.1: GPipe schedule
    forwards = [("F", i) for i in range(num_microbatches)]
    backwards = [("B", i) for i in range(num_microbatches)]
    return [forwards + backwards for _ in range(num_stages)]
    # END SOLUTION


def one_f_one_b_schedule(num_stages: int, num_microbatches: int) -> list[list[tuple]]:
    """1F1B (PipeDream-Flush): stage s warms up with w = min(p - s - 1, m) forwards, then
    alternates F(w + i), B(i) for i = 0 .. m - w - 1, then runs the remaining backwards.

    Same makespan as GPipe, (m + p - 1)(tF + tB), but stage s holds at most min(p - s, m)
    activations instead of m.
    """
    # BEGIN SOLUTION Task 2.2: 1F1B schedule
    p, m = num_stages, num_microbatches
    schedule = []
    for s in range(p):
        warmup = min(p - s - 1, m)
        actions = [("F", i) for i in range(warmup)]
        for i in range(m - warmup):
            actions += [("F", warmup + i), ("B", i)]
        actions += [("B", i) for i in range(m - warmup, m)]
        schedule.append(actions)
    return schedule
    # END SOLUTION


def interleaved_schedule(num_stages: int, num_microbatches: int, num_chunks: int) -> list[list[tuple]]:
    """Megatron's interleaved 1F1B: each stage holds v = num_chunks model chunks.

    Forward k of a stage runs microbatch (k // (p v)) p + k % p on chunk (k // p) % v;
    backward k the same microbatch on chunk v - 1 - (k // p) % v. Stage s warms up with
    w = min(2 (p - s - 1) + (v - 1) p, m v) forwards, then for i in range(m v - w) runs
    forward w + i then backward i, then the remaining backwards.
    Requires m % p == 0 and v >= 2 (ValueError otherwise).
    """
    # BEGIN SOLUTION Task 2.3: interleaved 1F1B schedule
    p, m, v = num_stages, num_microbatches, num_chunks
    if v < 2:
        raise ValueError(f"interleaved_schedule needs num_chunks >= 2, got {v} (use one_f_one_b_schedule)")
    if m % p != 0:
        raise ValueError(f"interleaved_schedule needs num_microbatches ({m}) divisible by num_stages ({p})")

    def microbatch(k: int) -> int:
        return (k // (p * v)) * p + k % p

    def forward(k: int) -> tuple:
        return ("F", microbatch(k), (k // p) % v)

    def backward(k: int) -> tuple:
        return ("B", microbatch(k), v - 1 - (k // p) % v)

    schedule = []
    for s in range(p):
        warmup = min((p - s - 1) * 2 + (v - 1) * p, m * v)
        actions = [forward(k) for k in range(warmup)]
        for i in range(m * v - warmup):
            actions += [forward(warmup + i), backward(i)]
        actions += [backward(k) for k in range(m * v - warmup, m * v)]
        schedule.append(actions)
    return schedule
    # END SOLUTION


def simulate_pipeline(schedule, t_forward: float = 1.0, t_backward: float = 2.0) -> tuple[float, list[list[float]]]:
    """Run a schedule on an idealised machine; returns (makespan, start time of every action).

    Each stage runs its actions in order; an action starts when its stage is free and its
    dependency has finished: F of virtual stage k needs F of k - 1 (same microbatch), B of
    the last virtual stage needs its F, B of k needs B of k + 1. With v = 1 + the largest
    chunk index (1 without chunks) a forward takes t_forward / v and a backward t_backward / v.
    ValueError for an action listed twice or missing, and ("deadlock ...") for a schedule
    whose stages wait on each other forever.
    """
    # BEGIN SOLUTION Task 2.4: pipeline simulator
    p = len(schedule)
    v = 1 + max((action[2] for actions in schedule for action in actions if len(action) > 2), default=0)
    last = v * p - 1
    duration = {"F": t_forward / v, "B": t_backward / v}
    where = {}                                              # (kind, microbatch, virtual stage) -> (stage, index)
    for s, actions in enumerate(schedule):
        for index, action in enumerate(actions):
            kind, mb, chunk = action[0], action[1], action[2] if len(action) > 2 else 0
            if kind not in duration or not 0 <= chunk < v:
                raise ValueError(f"stage {s} action {index}: {action!r} is not an F or B action")
            key = (kind, mb, chunk * p + s)
            if key in where:
                raise ValueError(f"stage {s}: {action!r} is listed twice")
            where[key] = (s, index)
    microbatches = {mb for _, mb, _ in where}
    for mb in sorted(microbatches):
        for k in range(v * p):
            for kind in "FB":
                if (kind, mb, k) not in where:
                    raise ValueError(f"{kind} of microbatch {mb} on virtual stage {k} is missing")

    def dependency(kind: str, mb: int, k: int):
        if kind == "F":
            return ("F", mb, k - 1) if k > 0 else None
        return ("F", mb, k) if k == last else ("B", mb, k + 1)

    end = {}                                                # key -> finish time
    starts = [[0.0] * len(actions) for actions in schedule]
    position, free = [0] * p, [0.0] * p
    progress = True
    while progress:
        progress = False
        for s, actions in enumerate(schedule):
            while position[s] < len(actions):
                action = actions[position[s]]
                key = (action[0], action[1], (action[2] if len(action) > 2 else 0) * p + s)
                needed = dependency(*key)
                if needed is not None and needed not in end:
                    break
                start = max(free[s], end[needed] if needed is not None else 0.0)
                starts[s][position[s]] = start
                free[s] = end[key] = start + duration[key[0]]
                position[s] += 1
                progress = True
    stuck = [s for s in range(p) if position[s] < len(schedule[s])]
    if stuck:
        raise ValueError(f"deadlock: stages {stuck} wait for each other forever")
    return max(end.values(), default=0.0), starts
    # END SOLUTION


def bubble_fraction(schedule, t_forward: float = 1.0, t_backward: float = 2.0) -> float:
    """The idle share of the pipeline: 1 - total busy time / (num_stages * makespan); 0.0 when empty."""
    # BEGIN SOLUTION Task 2.5: bubble fraction
    makespan, _ = simulate_pipeline(schedule, t_forward, t_backward)
    if makespan == 0.0:
        return 0.0
    v = 1 + max((action[2] for actions in schedule for action in actions if len(action) > 2), default=0)
    busy = sum((t_forward if action[0] == "F" else t_backward) / v for actions in schedule for action in actions)
    return 1.0 - busy / (len(schedule) * makespan)
    # END SOLUTION


def peak_activations(schedule) -> list[int]:
    """Per stage: the largest number of (microbatch, chunk) whose F is done and whose B is not yet."""
    # BEGIN SOLUTION Task 2.6: peak activation memory
    peaks = []
    for actions in schedule:
        live = peak = 0
        for action in actions:
            live += 1 if action[0] == "F" else -1
            peak = max(peak, live)
        peaks.append(peak)
    return peaks
    # END SOLUTION


# ============================================================================ tensor parallelism
# Ranks are simulated: a list entry per rank. Weights follow torch.nn.Linear: (d_out, d_in).


def column_parallel_linear(x: Tensor, weight: Tensor, bias: Tensor | None, tp_size: int) -> list[Tensor]:
    """Split the output features: rank r holds rows W_r (d_out / tp, d_in) and b_r of the
    weight and bias and returns its slice of the output, x @ W_r^T + b_r, shape (..., d_out / tp).
    Concatenating the slices gives the unsharded layer (an all-gather, if one is needed)."""
    # BEGIN SOLUTION Task 3.1: column-parallel linear
    weights = torch.chunk(weight, tp_size, dim=0)                       # tp x (d_out/tp, d_in)
    biases = torch.chunk(bias, tp_size) if bias is not None else [None] * tp_size
    return [F.linear(x, w, b) for w, b in zip(weights, biases)]         # tp x (..., d_out/tp)
    # END SOLUTION


def row_parallel_linear(x_shards: list[Tensor], weight: Tensor, bias: Tensor | None, tp_size: int) -> Tensor:
    """Split the input features: rank r holds columns W_r (d_out, d_in / tp) and its input
    slice x_r (..., d_in / tp); x W^T = sum_r x_r W_r^T, so the partial products are summed
    (the all-reduce) and the bias is added once, after the sum."""
    # BEGIN SOLUTION Task 3.2: row-parallel linear
    weights = torch.chunk(weight, tp_size, dim=1)                       # tp x (d_out, d_in/tp)
    partials = [x_r @ w_r.T for x_r, w_r in zip(x_shards, weights)]     # tp x (..., d_out)
    total = torch.stack(partials).sum(0)                                # the all-reduce
    return total + bias if bias is not None else total
    # END SOLUTION


def tensor_parallel_mlp(x: Tensor, W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor,
                        tp_size: int) -> tuple[Tensor, int]:
    """Megatron's MLP, gelu(x W1^T + b1) W2^T + b2: W1 column-parallel, exact GELU on each
    rank's shard (elementwise, so no communication), W2 row-parallel. Returns (the output,
    the number of all-reduces used: 1, in the row-parallel layer)."""
    # BEGIN SOLUTION Task 3.3: tensor-parallel MLP
    hidden = [F.gelu(h) for h in column_parallel_linear(x, W1, b1, tp_size)]   # tp x (..., d_ff/tp)
    return row_parallel_linear(hidden, W2, b2, tp_size), 1
    # END SOLUTION


def parallel_groups(world_size: int, tp: int, pp: int, dp: int) -> dict[str, list[list[int]]]:
    """The communication groups of 3D parallelism.

    rank = pp_rank * (dp * tp) + dp_rank * tp + tp_rank (tp varies fastest, then dp, then pp).
    A tp group holds the ranks that differ only in tp_rank (and so on for dp and pp). Returns
    {"tp": ..., "dp": ..., "pp": ...}: each a list of groups (sorted ranks) sorted by first rank.
    ValueError when world_size != tp * pp * dp.
    """
    # BEGIN SOLUTION Task 3.4: parallel groups
    if world_size != tp * pp * dp or min(tp, pp, dp) < 1:
        raise ValueError(f"world_size {world_size} is not tp * pp * dp = {tp} * {pp} * {dp}")

    def rank(pp_rank: int, dp_rank: int, tp_rank: int) -> int:
        return pp_rank * (dp * tp) + dp_rank * tp + tp_rank

    groups = {
        "tp": [[rank(a, b, t) for t in range(tp)] for a in range(pp) for b in range(dp)],
        "dp": [[rank(a, d, t) for d in range(dp)] for a in range(pp) for t in range(tp)],
        "pp": [[rank(q, d, t) for q in range(pp)] for d in range(dp) for t in range(tp)],
    }
    return {name: sorted(sorted(group) for group in found) for name, found in groups.items()}
    # END SOLUTION
