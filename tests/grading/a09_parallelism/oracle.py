"""Trusted oracles of a09_parallelism: the ring's expected log, a pipeline simulator written
independently of the reference, the schedules' validity rules, the unsharded layers, the
3D groups by brute force, and the buggy variants that diagnoses compare against.

Imported by the hidden tests as `from oracle import ...`; never shipped to students.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

# ============================================================================ ring all-reduce


def ring_log(p: int, offsets=(0, 1)) -> list[list[tuple[int, int, int]]]:
    """The spec's transfer log: reduce-scatter sends chunk (r - t) % p, all-gather (r + 1 - t) % p."""
    return [[(r, (r + 1) % p, (r + offset - t) % p) for r in range(p)] for offset in offsets for t in range(p - 1)]


def integer_tensors(seed: int, p: int, shape, dtype=torch.float64) -> list[torch.Tensor]:
    """p tensors of small integers (exact in any summation order)."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(-50, 51, tuple(shape), generator=generator).to(dtype) for _ in range(p)]


def ring_result_with(rank_tensors, *, all_gather_adds=False, reduce_scatter_chunk=lambda r, t, p: (r - t) % p):
    """A ring all-reduce with one feature changed (for diagnoses): the result of rank 0."""
    p = len(rank_tensors)
    chunks = [[c.clone() for c in torch.tensor_split(t.reshape(-1), p)] for t in rank_tensors]
    for t in range(p - 1):
        moves = [(r, (r + 1) % p, reduce_scatter_chunk(r, t, p)) for r in range(p)]
        data = [chunks[s][c].clone() for s, _, c in moves]
        for (_, d, c), x in zip(moves, data):
            chunks[d][c] = chunks[d][c] + x
    for t in range(p - 1):
        moves = [(r, (r + 1) % p, (r + 1 - t) % p) for r in range(p)]
        data = [chunks[s][c].clone() for s, _, c in moves]
        for (_, d, c), x in zip(moves, data):
            chunks[d][c] = chunks[d][c] + x if all_gather_adds else x
    return [torch.cat(c).reshape(rank_tensors[0].shape) for c in chunks]


# ============================================================================ pipeline schedules


def action_key(action, stage: int, p: int) -> tuple[str, int, int]:
    """(kind, microbatch, virtual stage) of a stage's action."""
    chunk = action[2] if len(action) > 2 else 0
    return action[0], action[1], chunk * p + stage


def chunks_of(schedule) -> int:
    return 1 + max((a[2] for actions in schedule for a in actions if len(a) > 2), default=0)


def chunk_major_key(action, stage: int, p: int, v: int) -> tuple[str, int, int]:
    """The classic slip: chunk c of stage s taken as virtual stage s * v + c (a stage's chunks adjacent)."""
    return action[0], action[1], stage * v + (action[2] if len(action) > 2 else 0)


def simulate(schedule, t_forward: float = 1.0, t_backward: float = 2.0, *, chunk_major: bool = False):
    """(makespan, starts) by longest path over the dependency graph, or None on a deadlock.

    Written independently of the reference: the graph's edges are "previous action on the
    same stage" and the data dependency; a cycle is a deadlock.
    """
    p = len(schedule)
    v = chunks_of(schedule)
    last = v * p - 1
    key_of = (lambda action, stage, p: chunk_major_key(action, stage, p, v)) if chunk_major else action_key
    nodes = {}
    for s, actions in enumerate(schedule):
        for i, action in enumerate(actions):
            nodes[key_of(action, s, p)] = (s, i)
    preds = {}
    for key, (s, i) in nodes.items():
        kind, mb, k = key
        data = (("F", mb, k - 1) if k > 0 else None) if kind == "F" else (("F", mb, k) if k == last else ("B", mb, k + 1))
        before = [key_of(schedule[s][i - 1], s, p)] if i > 0 else []
        preds[key] = before + ([data] if data is not None else [])
    finish, state = {}, {}

    def visit(key):                                     # iterative DFS with cycle detection
        stack = [(key, iter(preds[key]))]
        state[key] = "open"
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                start = max((finish[c] for c in preds[node]), default=0.0)
                finish[node] = start + (t_forward if node[0] == "F" else t_backward) / v
                state[node] = "done"
            elif state.get(child) == "open":
                return False
            elif child not in state:
                state[child] = "open"
                stack.append((child, iter(preds[child])))
        return True

    for key in nodes:
        if key not in state and not visit(key):
            return None
    starts = [[finish[key_of(a, s, p)] - (t_forward if a[0] == "F" else t_backward) / v for a in actions]
              for s, actions in enumerate(schedule)]
    return max(finish.values(), default=0.0), starts


def validity_problems(schedule, p: int, m: int, v: int = 1) -> list[str]:
    """Why `schedule` is not a valid schedule of p stages, m microbatches, v chunks ([] if it is)."""
    problems = []
    if not isinstance(schedule, (list, tuple)) or len(schedule) != p:
        return [f"expected a list of {p} stages"]
    seen = {}
    for s, actions in enumerate(schedule):
        for action in actions:
            if not isinstance(action, tuple) or len(action) != (3 if v > 1 else 2) or action[0] not in ("F", "B"):
                return [f"stage {s} holds an action that is not ('F'|'B', microbatch{', chunk' if v > 1 else ''})"]
            key = action_key(action, s, p)
            if key in seen:
                problems.append(f"stage {s} runs {action} twice")
            seen[key] = True
    wanted = {(kind, mb, k) for kind in "FB" for mb in range(m) for k in range(v * p)}
    if set(seen) != wanted:
        problems.append("some (microbatch, chunk) has no F or no B on some stage, or an unknown one appears")
    if not problems and simulate(schedule) is None:
        problems.append("the stages wait for each other forever (an F before its predecessor's F, or a B before "
                        "its successor's B, on a cycle)")
    return problems


def busy_fraction_bubble(schedule, t_forward=1.0, t_backward=2.0) -> float:
    result = simulate(schedule, t_forward, t_backward)
    if result is None or result[0] == 0:
        return 0.0
    v = chunks_of(schedule)
    busy = sum((t_forward if a[0] == "F" else t_backward) / v for actions in schedule for a in actions)
    return 1.0 - busy / (len(schedule) * result[0])


def peaks(schedule) -> list[int]:
    out = []
    for actions in schedule:
        live = best = 0
        for a in actions:
            live += 1 if a[0] == "F" else -1
            best = max(best, live)
        out.append(best)
    return out


def one_f_one_b(p: int, m: int, warmup=lambda p, s, m: min(p - s - 1, m)) -> list[list[tuple]]:
    """1F1B with a configurable warm-up (diagnoses try the off-by-one)."""
    out = []
    for s in range(p):
        w = warmup(p, s, m)
        actions = [("F", i) for i in range(w)]
        for i in range(m - w):
            actions += [("F", w + i), ("B", i)]
        out.append(actions + [("B", i) for i in range(m - w, m)])
    return out


def interleaved(p: int, m: int, v: int, *, megatron_all_warmup=False, backward_reversed=True,
                warmup=lambda p, s, v, m: min((p - s - 1) * 2 + (v - 1) * p, m * v)) -> list[list[tuple]]:
    """Megatron's interleaved 1F1B, with switches for the variants diagnoses look for."""
    def mb(k):
        return (k // (p * v)) * p + k % p

    def fwd(k):
        return ("F", mb(k), (k // p) % v)

    def bwd(k):
        return ("B", mb(k), (v - 1 - (k // p) % v) if backward_reversed else (k // p) % v)

    out = []
    for s in range(p):
        w = m * v if megatron_all_warmup and m == p else warmup(p, s, v, m)
        actions = [fwd(k) for k in range(w)]
        for i in range(m * v - w):
            actions += [fwd(w + i), bwd(i)]
        out.append(actions + [bwd(k) for k in range(m * v - w, m * v)])
    return out


# ============================================================================ tensor parallelism


def mlp(x, W1, b1, W2, b2, approximate="none"):
    """The unsharded MLP: gelu(x W1^T + b1) W2^T + b2."""
    return F.linear(F.gelu(F.linear(x, W1, b1), approximate=approximate), W2, b2)


def groups_by_brute_force(tp: int, pp: int, dp: int, order=("pp", "dp", "tp")) -> dict[str, list[list[int]]]:
    """Enumerate every rank's coordinates (the first of `order` varies slowest) and group by the rest."""
    sizes = {"tp": tp, "pp": pp, "dp": dp}
    coordinates = {}
    for rank, values in enumerate(itertools.product(*(range(sizes[n]) for n in order))):
        coordinates[rank] = dict(zip(order, values))
    result = {}
    for name in ("tp", "dp", "pp"):
        buckets: dict[tuple, list[int]] = {}
        for rank, c in coordinates.items():
            buckets.setdefault(tuple(c[n] for n in order if n != name), []).append(rank)
        result[name] = sorted(sorted(g) for g in buckets.values())
    return result
