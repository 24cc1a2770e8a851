"""Hidden: tensor parallelism against the unsharded layers (outputs and gradients through the
autograd probe), the MLP's one all-reduce, and the 3D groups against brute force."""
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import assert_close, assert_equal, diagnose, expect_raises, first_true, require
from autograder.harness.strategies import hidden_seeds, random_tensor
from oracle import groups_by_brute_force, mlp

tp_sizes = st.sampled_from([1, 2, 3, 4])
leading = st.sampled_from([(), (3,), (2, 3)])
dtypes = st.sampled_from([torch.float64, torch.float32])


def explain_column(shards, x, weight, bias, tp):
    strided = [F.linear(x, weight[r::tp], bias[r::tp]) for r in range(tp)]
    return first_true([
        ("the shards must be contiguous blocks of rows (rank r holds rows r*d_out/tp .. (r+1)*d_out/tp - 1), "
         "not every tp-th row", lambda: all(torch.allclose(a, b) for a, b in zip(shards, strided))),
    ])


def explain_row(out, x, weight, bias, tp):
    return first_true([
        ("the bias is added on every rank before the sum: add it once, after the all-reduce",
         lambda: torch.allclose(out, F.linear(x, weight, bias) + (tp - 1) * bias)),
        ("the bias is missing", lambda: torch.allclose(out, F.linear(x, weight))),
    ])


def explain_mlp(out, x, W1, b1, W2, b2):
    return first_true([
        ("use the exact GELU (erf), not the tanh approximation", lambda: torch.allclose(out, mlp(x, W1, b1, W2, b2, "tanh"))),
    ])


@given(seed=hidden_seeds(), tp=tp_sizes, lead=leading, d_in=st.integers(1, 6), per_rank=st.integers(1, 3), dtype=dtypes)
def test_column_parallel_outputs_and_gradients(student, probe, seed, tp, lead, d_in, per_rank, dtype):
    d_out = per_rank * tp
    x = random_tensor(seed, (*lead, d_in), dtype)
    weight, bias = random_tensor(seed + 1, (d_out, d_in), dtype), random_tensor(seed + 2, (d_out,), dtype)
    cotangents = [random_tensor(seed + 3 + r, (*lead, per_rank), dtype) for r in range(tp)]
    shards, grads = probe.autograd(student.column_parallel_linear, (x, weight, bias, tp), wrt=[0, 1, 2],
                                   cotangents=cotangents)
    require(isinstance(shards, (list, tuple)) and len(shards) == tp, "column_parallel_linear: expected one shard per rank")
    expected = list(torch.chunk(F.linear(x, weight, bias), tp, dim=-1))
    with diagnose(lambda: explain_column(shards, x, weight, bias, tp)):
        for r in range(tp):
            assert_close(shards[r], expected[r], f"column_parallel_linear ({dtype}): rank {r}'s shard")
    inputs = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
    out = F.linear(*inputs)
    want = torch.autograd.grad(out, inputs, torch.cat(cotangents, dim=-1))
    for name, got, exp in zip(("x", "weight", "bias"), grads, want):
        require(got is not None, f"column_parallel_linear: no gradient reaches {name} (keep the computation differentiable)")
        assert_close(got, exp, f"column_parallel_linear: gradient with respect to {name}")


@given(seed=hidden_seeds(), tp=tp_sizes, lead=leading, per_rank=st.integers(1, 3), d_out=st.integers(1, 5), dtype=dtypes)
def test_row_parallel_outputs_and_gradients(student, probe, seed, tp, lead, per_rank, d_out, dtype):
    d_in = per_rank * tp
    x = random_tensor(seed, (*lead, d_in), dtype)
    weight, bias = random_tensor(seed + 1, (d_out, d_in), dtype), random_tensor(seed + 2, (d_out,), dtype)
    shards = list(torch.chunk(x, tp, dim=-1))
    cotangent = random_tensor(seed + 3, (*lead, d_out), dtype)
    out, grads = probe.autograd(student.row_parallel_linear, (shards, weight, bias, tp), wrt=[1, 2], cotangents=cotangent)
    with diagnose(lambda: explain_row(out, x, weight, bias, tp)):
        assert_close(out, F.linear(x, weight, bias), f"row_parallel_linear ({dtype})")
    inputs = [weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)]
    want = torch.autograd.grad(F.linear(x, *inputs), inputs, cotangent)
    for name, got, exp in zip(("weight", "bias"), grads, want):
        require(got is not None, f"row_parallel_linear: no gradient reaches {name}")
        assert_close(got, exp, f"row_parallel_linear: gradient with respect to {name}")


@given(seed=hidden_seeds(), tp=tp_sizes, lead=leading, d_model=st.integers(1, 5), per_rank=st.integers(1, 3),
       dtype=dtypes)
def test_mlp_outputs_gradients_and_one_all_reduce(student, probe, seed, tp, lead, d_model, per_rank, dtype):
    d_ff = per_rank * tp
    x = random_tensor(seed, (*lead, d_model), dtype)
    W1, b1 = random_tensor(seed + 1, (d_ff, d_model), dtype), random_tensor(seed + 2, (d_ff,), dtype)
    W2, b2 = random_tensor(seed + 3, (d_model, d_ff), dtype), random_tensor(seed + 4, (d_model,), dtype)
    cotangent = random_tensor(seed + 5, (*lead, d_model), dtype)
    (out, reductions), grads = probe.autograd(student.tensor_parallel_mlp, (x, W1, b1, W2, b2, tp),
                                              wrt=[0, 1, 2, 3, 4], cotangents=[cotangent])
    with diagnose(lambda: explain_mlp(out, x, W1, b1, W2, b2)):
        assert_close(out, mlp(x, W1, b1, W2, b2), f"tensor_parallel_mlp ({dtype})")
    with diagnose("Megatron's MLP needs one all-reduce: GELU is elementwise, so the column-parallel shards "
                  "feed the row-parallel layer without communication"):
        assert_equal(int(reductions), 1, "tensor_parallel_mlp: the number of all-reduces reported")
    inputs = [t.clone().requires_grad_(True) for t in (x, W1, b1, W2, b2)]
    want = torch.autograd.grad(mlp(*inputs), inputs, cotangent)
    for name, got, exp in zip(("x", "W1", "b1", "W2", "b2"), grads, want):
        require(got is not None, f"tensor_parallel_mlp: no gradient reaches {name}")
        assert_close(got, exp, f"tensor_parallel_mlp: gradient with respect to {name}")


def explain_groups(got, tp, pp, dp):
    return first_true([
        (f"the rank order is {' then '.join(order)} from slowest to fastest; the spec's is pp, then dp, then tp (fastest)",
         lambda order=order: got == groups_by_brute_force(tp, pp, dp, order))
        for order in (("tp", "dp", "pp"), ("dp", "pp", "tp"), ("pp", "tp", "dp"), ("tp", "pp", "dp"), ("dp", "tp", "pp"))
    ])


@given(tp=st.integers(1, 4), pp=st.integers(1, 4), dp=st.integers(1, 4))
def test_groups_partition_the_ranks_in_the_spec_order(student, tp, pp, dp):
    world = tp * pp * dp
    got = student.parallel_groups(world, tp, pp, dp)
    require(isinstance(got, dict) and set(got) == {"tp", "dp", "pp"}, "parallel_groups must return keys tp, dp, pp")
    got = {k: [sorted(int(r) for r in g) for g in v] for k, v in got.items()}
    for name, size in (("tp", tp), ("dp", dp), ("pp", pp)):
        flat = sorted(r for g in got[name] for r in g)
        require(flat == list(range(world)), f"parallel_groups: the {name} groups must partition the ranks 0..world-1")
        require(all(len(g) == size for g in got[name]), f"parallel_groups: every {name} group holds {name} ranks")
    with diagnose(lambda: explain_groups(got, tp, pp, dp)):
        assert_equal(got, groups_by_brute_force(tp, pp, dp), "parallel_groups: the groups (spec's rank order)")


def test_groups_reject_a_wrong_world_size(student):
    expect_raises(ValueError, lambda: student.parallel_groups(7, 2, 2, 2), "parallel_groups with world_size != tp*pp*dp")
