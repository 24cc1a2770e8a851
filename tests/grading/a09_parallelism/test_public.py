"""Public tests of a09_parallelism: run them with `autograder check a09`.

Oracles here are public: the sum itself (torch), the spec's transfer-log formula, the
lecture's closed forms ((m + p - 1)(tF + tB), min(p - s, m)), small schedules checked by
hand, and the unsharded layers (torch.nn.functional). The hidden tests check the same
functions on many more (p, m, v), shapes and hand-built schedules, the real multi-process
ring, and gradients.
"""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import EXACT, assert_close, assert_equal, expect_raises, require
from autograder.harness.strategies import public_seeds, random_tensor, shapes


def spec_log(p):
    """The spec's log: reduce-scatter step t sends chunk (r - t) % p, all-gather (r + 1 - t) % p."""
    return [[(r, (r + 1) % p, (r + offset - t) % p) for r in range(p)] for offset in (0, 1) for t in range(p - 1)]


# ---------------------------------------------------------------- Task 1.1 ring all-reduce

@given(seed=public_seeds(), p=st.integers(1, 5), shape=shapes(max_dims=2, max_side=5))
def test_ring_allreduce_sums_and_logs(student, seed, p, shape):
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.randint(-20, 21, shape, generator=generator).double() for _ in range(p)]
    results, log = student.ring_allreduce(tensors)
    total = torch.stack(tensors).sum(0)
    require(isinstance(results, (list, tuple)) and len(results) == p, f"ring_allreduce with p={p}: expected {p} tensors")
    for r, result in enumerate(results):
        assert_close(result, total, f"ring_allreduce with p={p}, shape {tuple(shape)}: rank {r}'s result", tol=EXACT)
    assert_equal([[tuple(move) for move in step] for step in log], spec_log(p),
                 f"ring_allreduce with p={p}: the transfer log")


def test_ring_allreduce_with_fewer_elements_than_ranks(student):
    tensors = [torch.tensor([float(r + 1), 10.0 * (r + 1)]) for r in range(4)]     # numel 2 < p 4
    results, log = student.ring_allreduce(tensors)
    for r in range(4):
        assert_close(results[r], torch.tensor([10.0, 100.0]), f"ring_allreduce, numel 2 < p 4: rank {r}", tol=EXACT)
    assert_equal([[tuple(m) for m in step] for step in log], spec_log(4), "ring_allreduce with p=4: the log")


# ---------------------------------------------------------------- Task 2 schedules

def test_schedule_gpipe_small(student):
    expected = [[("F", 0), ("F", 1), ("F", 2), ("B", 0), ("B", 1), ("B", 2)]] * 2
    assert_equal(student.gpipe_schedule(2, 3), expected, "gpipe_schedule(2, 3)")


def test_schedule_one_f_one_b_by_hand(student):
    # p = 3, m = 4: warm-ups 2, 1, 0 forwards
    expected = [
        [("F", 0), ("F", 1), ("F", 2), ("B", 0), ("F", 3), ("B", 1), ("B", 2), ("B", 3)],
        [("F", 0), ("F", 1), ("B", 0), ("F", 2), ("B", 1), ("F", 3), ("B", 2), ("B", 3)],
        [("F", 0), ("B", 0), ("F", 1), ("B", 1), ("F", 2), ("B", 2), ("F", 3), ("B", 3)],
    ]
    assert_equal(student.one_f_one_b_schedule(3, 4), expected, "one_f_one_b_schedule(3, 4)")


def test_schedule_interleaved_by_hand(student):
    # p = 2, m = 2, v = 2: stage 0 warms up with min(2 + 2, 4) = 4 forwards, stage 1 with 2
    expected = [
        [("F", 0, 0), ("F", 1, 0), ("F", 0, 1), ("F", 1, 1), ("B", 0, 1), ("B", 1, 1), ("B", 0, 0), ("B", 1, 0)],
        [("F", 0, 0), ("F", 1, 0), ("F", 0, 1), ("B", 0, 1), ("F", 1, 1), ("B", 1, 1), ("B", 0, 0), ("B", 1, 0)],
    ]
    assert_equal(student.interleaved_schedule(2, 2, 2), expected, "interleaved_schedule(2, 2, 2)")


def test_schedule_interleaved_rejects_bad_arguments(student):
    expect_raises(ValueError, lambda: student.interleaved_schedule(2, 3, 2), "interleaved_schedule(2, 3, 2) (m % p != 0)")
    expect_raises(ValueError, lambda: student.interleaved_schedule(2, 4, 1), "interleaved_schedule(2, 4, 1) (v < 2)")


# ---------------------------------------------------------------- Task 2.4-2.6 simulator, bubble, activations

@given(p=st.integers(1, 5), m=st.integers(1, 8))
def test_simulate_makespan_of_gpipe_and_1f1b(student, p, m):
    for name in ("gpipe_schedule", "one_f_one_b_schedule"):
        schedule = getattr(student, name)(p, m)
        makespan, starts = student.simulate_pipeline(schedule, 1.0, 2.0)
        assert_close(float(makespan), float((m + p - 1) * 3), f"simulate_pipeline({name}({p}, {m}), 1, 2): makespan")
        bubble = student.bubble_fraction(schedule, 1.0, 2.0)
        assert_close(float(bubble), 1.0 - 3.0 * m / ((m + p - 1) * 3.0), f"bubble_fraction({name}({p}, {m}))")
    assert_equal(student.peak_activations(student.gpipe_schedule(p, m)), [m] * p, f"peak_activations(gpipe({p}, {m}))")
    assert_equal(student.peak_activations(student.one_f_one_b_schedule(p, m)), [min(p - s, m) for s in range(p)],
                 f"peak_activations(1F1B({p}, {m}))")


def test_simulate_start_times_by_hand(student):
    schedule = [[("F", 0), ("F", 1), ("B", 0), ("B", 1)], [("F", 0), ("B", 0), ("F", 1), ("B", 1)]]
    makespan, starts = student.simulate_pipeline(schedule, 1.0, 2.0)
    assert_close(float(makespan), 9.0, "simulate_pipeline of a 2-stage 1F1B: makespan")
    assert_close([[float(t) for t in row] for row in starts], [[0.0, 1.0, 4.0, 7.0], [1.0, 2.0, 4.0, 5.0]],
                 "simulate_pipeline of a 2-stage 1F1B: start times")


def test_simulate_interleaved_by_hand(student):
    # interleaved_schedule(2, 2, 2): v = 2 chunks, so a forward takes 0.5 and a backward 1.0
    schedule = [
        [("F", 0, 0), ("F", 1, 0), ("F", 0, 1), ("F", 1, 1), ("B", 0, 1), ("B", 1, 1), ("B", 0, 0), ("B", 1, 0)],
        [("F", 0, 0), ("F", 1, 0), ("F", 0, 1), ("B", 0, 1), ("F", 1, 1), ("B", 1, 1), ("B", 0, 0), ("B", 1, 0)],
    ]
    makespan, starts = student.simulate_pipeline(schedule, 1.0, 2.0)
    assert_close(float(makespan), 7.5, "simulate_pipeline of interleaved_schedule(2, 2, 2), tF=1, tB=2: makespan "
                                       "(each action takes t / v)")
    assert_close([[float(t) for t in row] for row in starts],
                 [[0.0, 0.5, 1.0, 1.5, 3.0, 4.5, 5.5, 6.5], [0.5, 1.0, 1.5, 2.0, 3.0, 3.5, 4.5, 5.5]],
                 "simulate_pipeline of interleaved_schedule(2, 2, 2): start times")


def test_simulate_rejects_deadlock_and_duplicates(student):
    deadlock = [[("B", 0), ("F", 0)], [("F", 0), ("B", 0)]]        # stage 0's B waits for its own later F
    expect_raises(ValueError, lambda: student.simulate_pipeline(deadlock), "simulate_pipeline on a deadlocked schedule")
    twice = [[("F", 0), ("F", 0), ("B", 0)], [("F", 0), ("B", 0)]]
    expect_raises(ValueError, lambda: student.simulate_pipeline(twice), "simulate_pipeline with an action listed twice")


# ---------------------------------------------------------------- Task 3 tensor parallelism

@pytest.mark.parametrize("tp", [1, 2, 4])
@given(seed=public_seeds(), batch=st.integers(1, 3))
def test_tp_layers_equal_unsharded(student, tp, seed, batch):
    d_in, d_out = 8, 4 * tp
    x = random_tensor(seed, (batch, d_in))
    weight, bias = random_tensor(seed + 1, (d_out, d_in)), random_tensor(seed + 2, (d_out,))
    shards = student.column_parallel_linear(x, weight, bias, tp)
    require(len(shards) == tp, f"column_parallel_linear with tp_size={tp}: expected {tp} shards")
    assert_close(torch.cat(list(shards), dim=-1), F.linear(x, weight, bias),
                 f"column_parallel_linear, tp_size={tp}: shards concatenated")
    x_shards = list(torch.chunk(x, tp, dim=-1))
    weight2, bias2 = random_tensor(seed + 3, (5, d_in)), random_tensor(seed + 8, (5,))
    assert_close(student.row_parallel_linear(x_shards, weight2, bias2, tp), F.linear(x, weight2, bias2),
                 f"row_parallel_linear, tp_size={tp} (bias added once)")
    W1, b1 = random_tensor(seed + 4, (4 * tp, d_in)), random_tensor(seed + 5, (4 * tp,))
    W2, b2 = random_tensor(seed + 6, (d_in, 4 * tp)), random_tensor(seed + 7, (d_in,))
    out, reductions = student.tensor_parallel_mlp(x, W1, b1, W2, b2, tp)
    assert_close(out, F.linear(F.gelu(F.linear(x, W1, b1)), W2, b2), f"tensor_parallel_mlp, tp_size={tp}")
    assert_equal(int(reductions), 1, "tensor_parallel_mlp: number of all-reduces")


def test_tp_groups_small(student):
    expected = {"tp": [[0, 1], [2, 3], [4, 5], [6, 7]], "dp": [[0, 2], [1, 3], [4, 6], [5, 7]],
                "pp": [[0, 4], [1, 5], [2, 6], [3, 7]]}
    assert_equal(student.parallel_groups(8, 2, 2, 2), expected, "parallel_groups(8, tp=2, pp=2, dp=2)")
    got = student.parallel_groups(6, 3, 1, 2)
    assert_equal(got["tp"], [[0, 1, 2], [3, 4, 5]], "parallel_groups(6, tp=3, pp=1, dp=2)['tp']")
