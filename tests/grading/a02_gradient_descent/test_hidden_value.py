"""Hidden tests of a02's Value (Tasks 2.6 and 2.7) against torch autograd in float64."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oracle import GRAPH_SEEDS
from a02_diagnosis import explain_value
from autograder.harness import diagnose
from autograder.harness.compare import assert_close

# Hidden failures never show their inputs, so shrinking them buys nothing and costs ~100 more
# calls per failing test (a minute for a stub). The plugin's `grading` profile is inherited.


def _student_grads(nodes, indices):
    return {i: nodes[i].grad for i in indices}


# ----------------------------------------------------------------- one operation at a time

@pytest.mark.parametrize("kind", ["add", "sub", "mul", "div", "add_number", "sub_number", "mul_number", "div_number",
                                  "number_add", "number_sub", "number_mul", "number_div",
                                  "neg", "pow", "exp", "log", "tanh", "relu", "sigmoid"])
def test_value_each_operation(student, graphs, kind):
    """One op on random operands (not hypothesis-driven: a failure here costs one call, not a shrink)."""
    with diagnose(lambda: explain_value(student)):
        what = f"Value operation {kind.replace('number', '<number>').replace('_', ' ')}"
        for seed in (1001, 1002, 1003, 1004):
            graph = graphs.single(kind, seed)
            nodes = graphs.build(student, graph)
            out = nodes[-1]
            out.backward()
            values, expected = graphs.oracle(graph, graph.size - 1)
            assert_close(out.data, values[-1], f"{what}: the result's .data", tol=graphs.tolerance)
            leaves = [i for i in expected if i < len(graph.leaves)]
            graphs.assert_grads_close(_student_grads(nodes, leaves), {i: expected[i] for i in leaves}, what)


def test_value_fresh_values_and_unchanged_operands(student):
    with diagnose(lambda: explain_value(student)):
        v = student.Value(3.0)
        assert_close(v.data, 3.0, "Value(3.0).data")
        assert_close(v.grad, 0.0, "Value(3.0).grad before any backward")
        w = student.Value(-1.5)
        for result in (v + w, v * 2, 1 - v, v ** 2, v.exp(), -w):
            assert_close(result.grad, 0.0, "a new Value's .grad")
        assert_close((v.data, w.data), (3.0, -1.5), "operands' .data after v + w, v * 2, 1 - v, v ** 2, v.exp(), -w "
                     "(operations return new Values and leave their operands unchanged)")


CONVENTIONS = {   # (name, x, build, expected data, expected grad), exact in float64
    "relu": [
        ("relu at 0 (relu'(0) = 0)", 0.0, lambda x: x.relu(), 0.0, 0.0),
        ("relu of a negative", -2.0, lambda x: x.relu(), 0.0, 0.0),
        ("relu of a positive", 2.5, lambda x: x.relu(), 2.5, 1.0),
    ],
    "pow": [
        ("x ** 0 at x = 0 (d/dx = 0)", 0.0, lambda x: x ** 0, 1.0, 0.0),
        ("x ** 0 at x = 3", 3.0, lambda x: x ** 0, 1.0, 0.0),
        ("x ** 2 at x = 0", 0.0, lambda x: x ** 2, 0.0, 0.0),
        ("x ** 1 at x = 0", 0.0, lambda x: x ** 1, 0.0, 1.0),
        ("x ** 3 at x = -2", -2.0, lambda x: x ** 3, -8.0, 12.0),
        ("x ** -1 at x = -2", -2.0, lambda x: x ** -1, -0.5, -0.25),
        ("x ** 0.5 at x = 4", 4.0, lambda x: x ** 0.5, 2.0, 0.25),
    ],
}


@pytest.mark.parametrize("family", list(CONVENTIONS))
def test_value_conventions(student, graphs, family):
    with diagnose(lambda: explain_value(student)):
        for name, x, build, data, grad in CONVENTIONS[family]:
            leaf = student.Value(x)
            out = build(leaf)
            out.backward()
            assert_close(out.data, data, f"{name}: .data")
            assert_close(leaf.grad, grad, f"{name}: .grad of x", tol=graphs.tolerance)
            assert_close(out.grad, 1.0, f"{name}: .grad of the output itself after backward()")


MAGNITUDES = {   # name: (a, b, expression), evaluated on Values and on torch float64 tensors
    "a * b, a = 1e8, b = 1e-8": (1e8, 1e-8, lambda a, b: a * b),
    "(a * a + b) / a, a = 1e6, b = 3": (1e6, 3.0, lambda a, b: (a * a + b) / a),
    "a.sigmoid() + b.tanh(), a = -30, b = 20": (-30.0, 20.0, lambda a, b: a.sigmoid() + b.tanh()),
    "a.log() * b, a = 1e-6, b = 1e6": (1e-6, 1e6, lambda a, b: a.log() * b),
    "a.exp() - b, a = 40, b = 1e17": (40.0, 1e17, lambda a, b: a.exp() - b),
    "b / a ** 2, a = 1e-4, b = 2": (1e-4, 2.0, lambda a, b: b / a ** 2),
}


@pytest.mark.parametrize("name", list(MAGNITUDES))
def test_value_large_and_small_magnitudes(student, graphs, name):
    with diagnose(lambda: explain_value(student)):
        import torch

        a_value, b_value, build = MAGNITUDES[name]
        a, b = student.Value(a_value), student.Value(b_value)
        out = build(a, b)
        out.backward()
        ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a_value, b_value))
        expected = build(ta, tb)
        expected.backward()
        assert_close(out.data, float(expected.detach()), f"{name}: .data", tol=graphs.tolerance)
        for label, got, want in (("a", a.grad, float(ta.grad)), ("b", b.grad, float(tb.grad))):
            assert_close(got, want, f"{name}: .grad of {label}", tol=graphs.tolerance)


# ----------------------------------------------------------------- random graphs

@given(seed=GRAPH_SEEDS, num_leaves=st.integers(1, 4), num_ops=st.integers(10, 35))
def test_value_random_graph_matches_torch(student, graphs, seed, num_leaves, num_ops):
    with diagnose(lambda: explain_value(student)):
        graph = graphs.random(seed + 505, num_leaves, num_ops)
        output = graph.size - 1
        nodes = graphs.build(student, graph)
        nodes[output].backward()
        values, expected = graphs.oracle(graph, output)
        assert_close(nodes[output].data, values[output], "the output's .data of a random graph", tol=graphs.tolerance)
        graphs.assert_grads_close(_student_grads(nodes, expected), expected, "random graph, backward() on its output")


@given(seed=GRAPH_SEEDS, num_leaves=st.integers(1, 3), num_ops=st.integers(5, 20))
def test_value_backward_twice_gives_the_same_grads(student, graphs, seed, num_leaves, num_ops):
    with diagnose(lambda: explain_value(student)):
        graph = graphs.random(seed + 101, num_leaves, num_ops)
        output = graph.size - 1
        nodes = graphs.build(student, graph)
        nodes[output].backward()
        nodes[output].backward()
        _, expected = graphs.oracle(graph, output)
        graphs.assert_grads_close(_student_grads(nodes, expected), expected,
                                  "random graph, backward() called twice on its output (grads restart from zero)")


@given(seed=GRAPH_SEEDS, num_leaves=st.integers(1, 3), num_ops=st.integers(6, 20), where=st.sampled_from([0.25, 0.5, 0.75]))
def test_value_backward_from_an_inner_node(student, graphs, seed, num_leaves, num_ops, where):
    with diagnose(lambda: explain_value(student)):
        graph = graphs.random(seed + 202, num_leaves, num_ops)
        inner = num_leaves + int(where * (num_ops - 1))
        nodes = graphs.build(student, graph)
        nodes[-1].backward()                          # leaves stale grads everywhere
        nodes[inner].backward()
        _, expected = graphs.oracle(graph, inner)
        graphs.assert_grads_close(_student_grads(nodes, expected), expected,
                                  "random graph, backward() on an inner node after backward() on the output")


@given(seed=GRAPH_SEEDS, num_leaves=st.integers(1, 3), num_ops=st.integers(4, 15))
def test_value_second_graph_sharing_leaves(student, graphs, seed, num_leaves, num_ops):
    with diagnose(lambda: explain_value(student)):
        first = graphs.random(seed + 303, num_leaves, num_ops)
        second = graphs.random(seed + 404, num_leaves, num_ops, leaves=first.leaves)
        nodes = graphs.build(student, first)
        nodes[-1].backward()
        other = graphs.build(student, second, leaves=nodes[:num_leaves])
        other[-1].backward()
        _, expected = graphs.oracle(second, second.size - 1)
        graphs.assert_grads_close(_student_grads(other, expected), expected,
                                  "a second graph on the same leaves, backward() after the first graph's")


@pytest.mark.parametrize("start, w, x", [(0.3, 1.25, -0.4), (-0.7, 0.8, 0.1)])
def test_value_deep_chain(student, graphs, start, w, x):
    """199 ops in a row: a graph 200 nodes deep, its leaves w and x shared by 33 ops each."""
    with diagnose(lambda: explain_value(student)):
        graph = graphs.deep_chain(start, w, x)
        output = graph.size - 1
        nodes = graphs.build(student, graph)
        nodes[output].backward()
        values, expected = graphs.oracle(graph, output)
        assert_close(nodes[output].data, values[output], "the output's .data of a 200-node chain", tol=graphs.tolerance)
        graphs.assert_grads_close(_student_grads(nodes, expected), expected, "200-node chain")
