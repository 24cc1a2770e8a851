"""a09 in another style: index arithmetic on one buffer per rank, a heap-driven simulator,
einsum for the tensor-parallel layers, and the 3D groups read off a reshaped arange."""
import heapq

import torch
import torch.distributed as dist


def _bounds(numel, p):
    """Start and end of each of the p chunks torch.tensor_split would make."""
    base, extra = divmod(numel, p)
    starts = [i * base + min(i, extra) for i in range(p + 1)]
    return list(zip(starts[:-1], starts[1:]))


def ring_allreduce(rank_tensors):
    p = len(rank_tensors)
    buffers = [t.flatten().clone() for t in rank_tensors]
    bounds = _bounds(buffers[0].numel(), p)
    log = []
    for step in range(2 * (p - 1)):
        reducing = step < p - 1
        t = step if reducing else step - (p - 1)
        moves = [(r, (r + 1) % p, ((r - t) if reducing else (r + 1 - t)) % p) for r in range(p)]
        snapshot = [b.clone() for b in buffers]
        for src, dst, c in moves:
            lo, hi = bounds[c]
            if reducing:
                buffers[dst][lo:hi] += snapshot[src][lo:hi]
            else:
                buffers[dst][lo:hi] = snapshot[src][lo:hi]
        log.append(moves)
    return [b.reshape(rank_tensors[0].shape) for b in buffers], log


def ring_allreduce_dist(tensor):
    rank, p = dist.get_rank(), dist.get_world_size()
    buffer = tensor.flatten().clone()
    bounds = _bounds(buffer.numel(), p)
    for step in range(2 * (p - 1)):
        reducing = step < p - 1
        t = step if reducing else step - (p - 1)
        send_lo, send_hi = bounds[((rank - t) if reducing else (rank + 1 - t)) % p]
        recv_lo, recv_hi = bounds[((rank - 1 - t) if reducing else (rank - t)) % p]
        outgoing = buffer[send_lo:send_hi].clone()
        incoming = torch.empty(recv_hi - recv_lo, dtype=buffer.dtype)
        # even ranks send first, odd ranks receive first: blocking calls that never wait in a circle
        if rank % 2 == 0:
            if outgoing.numel():
                dist.send(outgoing, (rank + 1) % p)
            if incoming.numel():
                dist.recv(incoming, (rank - 1) % p)
        else:
            if incoming.numel():
                dist.recv(incoming, (rank - 1) % p)
            if outgoing.numel():
                dist.send(outgoing, (rank + 1) % p)
        if reducing:
            buffer[recv_lo:recv_hi] += incoming
        else:
            buffer[recv_lo:recv_hi] = incoming
    return buffer.reshape(tensor.shape)


def gpipe_schedule(num_stages, num_microbatches):
    return [[(kind, i) for kind in "FB" for i in range(num_microbatches)] for _ in range(num_stages)]


def _one_f_one_b(p, m, warmup_of, forward, backward, total):
    out = []
    for s in range(p):
        w = warmup_of(s)
        order = [forward(k) for k in range(w)]
        for i in range(total - w):
            order.extend((forward(w + i), backward(i)))
        order.extend(backward(k) for k in range(total - w, total))
        out.append(order)
    return out


def one_f_one_b_schedule(num_stages, num_microbatches):
    p, m = num_stages, num_microbatches
    return _one_f_one_b(p, m, lambda s: min(p - s - 1, m), lambda k: ("F", k), lambda k: ("B", k), m)


def interleaved_schedule(num_stages, num_microbatches, num_chunks):
    p, m, v = num_stages, num_microbatches, num_chunks
    if num_chunks < 2 or num_microbatches % num_stages:
        raise ValueError("interleaving needs v >= 2 and m divisible by p")
    group = p * v
    return _one_f_one_b(
        p, m, lambda s: min(2 * (p - s - 1) + (v - 1) * p, m * v),
        lambda k: ("F", k // group * p + k % p, k // p % v),
        lambda k: ("B", k // group * p + k % p, v - 1 - k // p % v), m * v)


def simulate_pipeline(schedule, t_forward=1.0, t_backward=2.0):
    p = len(schedule)
    v = max([a[2] + 1 for stage in schedule for a in stage if len(a) == 3] + [1])
    cost = {"F": t_forward / v, "B": t_backward / v}
    virtual = lambda s, a: (a[2] if len(a) == 3 else 0) * p + s
    listed = set()
    for s, stage in enumerate(schedule):
        for a in stage:
            key = (a[0], a[1], virtual(s, a))
            if key in listed or a[0] not in cost:
                raise ValueError(f"bad or repeated action {a} on stage {s}")
            listed.add(key)
    mbs = {k[1] for k in listed}
    if len(listed) != 2 * len(mbs) * v * p:
        raise ValueError("some action is missing")
    done = {}
    starts = [[None] * len(stage) for stage in schedule]
    nxt = [0] * p
    clock = [0.0] * p
    heap = list(range(p))
    waiting = set()
    while heap or waiting:
        if not heap:
            raise ValueError("deadlock: no stage can run its next action")
        s = heapq.heappop(heap)
        waiting.discard(s)
        while nxt[s] < len(schedule[s]):
            a = schedule[s][nxt[s]]
            k = virtual(s, a)
            need = None
            if a[0] == "F" and k > 0:
                need = ("F", a[1], k - 1)
            elif a[0] == "B":
                need = ("F", a[1], k) if k == v * p - 1 else ("B", a[1], k + 1)
            if need is not None and need not in done:
                waiting.add(s)
                break
            begin = max(clock[s], done[need] if need else 0.0)
            starts[s][nxt[s]] = begin
            clock[s] = done[(a[0], a[1], k)] = begin + cost[a[0]]
            nxt[s] += 1
            for other in list(waiting):      # someone may be waiting for this action
                waiting.discard(other)
                heapq.heappush(heap, other)
    return max(done.values(), default=0.0), starts


def bubble_fraction(schedule, t_forward=1.0, t_backward=2.0):
    makespan, starts = simulate_pipeline(schedule, t_forward, t_backward)
    if not makespan:
        return 0.0
    v = max([a[2] + 1 for stage in schedule for a in stage if len(a) == 3] + [1])
    busy = sum(t_forward / v if a[0] == "F" else t_backward / v for stage in schedule for a in stage)
    return 1.0 - busy / (len(schedule) * makespan)


def peak_activations(schedule):
    result = []
    for stage in schedule:
        running = torch.tensor([1 if a[0] == "F" else -1 for a in stage], dtype=torch.int64).cumsum(0)
        result.append(int(running.max().clamp(min=0)) if len(stage) else 0)
    return result


def column_parallel_linear(x, weight, bias, tp_size):
    rows = weight.shape[0] // tp_size
    return [torch.einsum("...i,oi->...o", x, weight[r * rows:(r + 1) * rows])
            + (bias[r * rows:(r + 1) * rows] if bias is not None else 0) for r in range(tp_size)]


def row_parallel_linear(x_shards, weight, bias, tp_size):
    cols = weight.shape[1] // tp_size
    out = None
    for r, x_r in enumerate(x_shards):
        part = torch.einsum("...i,oi->...o", x_r, weight[:, r * cols:(r + 1) * cols])
        out = part if out is None else out + part
    return out + bias if bias is not None else out


def tensor_parallel_mlp(x, W1, b1, W2, b2, tp_size):
    shards = column_parallel_linear(x, W1, b1, tp_size)
    shards = [0.5 * h * (1.0 + torch.erf(h / 2 ** 0.5)) for h in shards]
    return row_parallel_linear(shards, W2, b2, tp_size), 1


def parallel_groups(world_size, tp, pp, dp):
    if tp * pp * dp != world_size:
        raise ValueError("world_size must equal tp * pp * dp")
    grid = torch.arange(world_size).reshape(pp, dp, tp)
    as_lists = lambda t: sorted(sorted(row) for row in t.tolist())
    return {"tp": as_lists(grid.reshape(-1, tp)),
            "dp": as_lists(grid.permute(0, 2, 1).reshape(-1, dp)),
            "pp": as_lists(grid.permute(1, 2, 0).reshape(-1, pp))}
