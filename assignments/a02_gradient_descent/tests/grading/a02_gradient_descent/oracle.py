"""Trusted oracles and instruments of the a02 suite (public and hidden tests share them;
conftest.py hands them to tests as session fixtures).

- `make_smooth_function(kind, seed, shape)`: a smooth test function f with its analytic
  gradient (trusted callables that student code calls back across the boundary).
- `make_quadratic(seed, n, rank)`: a convex quadratic 1/2 x^T A x - b^T x with its minimiser.
- `Graphs`: random computational graphs (shared sub-expressions, numbers on both sides of
  operators) built out of the student's `Value` and out of torch float64 tensors, the oracle.
- `Tolerances`: the suite's named tolerances, each with its reason.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from hypothesis import strategies as st

from autograder.harness.compare import FLOAT64, Tolerance

# A random graph's grads are sums of products of up to 200 local derivatives, each a few ulps
# off between implementations (math.tanh vs exp formulas, n*x**(n-1) vs n*out/x, other
# summation orders). Measured worst drift over 3000 graphs is ~1e-14 of the largest grad;
# 1e-9 of the largest grad in the graph leaves five orders of margin, while any wrong
# derivative or missed path is off by far more than that.
GRAPH = Tolerance(rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------- smooth test functions

@dataclass(frozen=True)
class SmoothFunction:
    name: str
    f: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]


SMOOTH_KINDS = ("quadratic", "trig", "logsumexp", "quartic")


def make_smooth_function(kind: str, seed: int, shape: tuple[int, ...]) -> SmoothFunction:
    """f: array of `shape` -> float, smooth everywhere, |f| and its derivatives of order 1."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if kind == "quadratic":
        M = rng.standard_normal((n, n))
        A = M @ M.T / n + np.eye(n)                                # SPD, (n, n)
        b = rng.standard_normal(n)

        def f(x):
            v = np.asarray(x, dtype=np.float64).ravel()
            return float(0.5 * v @ A @ v - b @ v)

        def grad(x):
            x = np.asarray(x, float)
            return (A @ x.ravel() - b).reshape(x.shape)
    elif kind == "trig":
        a, w, p = rng.uniform(0.5, 2.0, shape), rng.uniform(0.5, 2.0, shape), rng.uniform(0, 6.0, shape)

        def f(x):
            return float(np.sum(a * np.sin(w * np.asarray(x, dtype=np.float64) + p)))

        def grad(x):
            return a * w * np.cos(w * np.asarray(x, dtype=np.float64) + p)
    elif kind == "logsumexp":
        w = rng.uniform(-2.0, 2.0, shape)

        def f(x):
            z = w * np.asarray(x, dtype=np.float64)
            top = np.max(z)
            return float(top + np.log(np.sum(np.exp(z - top))))

        def grad(x):
            z = w * np.asarray(x, dtype=np.float64)
            e = np.exp(z - np.max(z))
            return w * e / np.sum(e)
    elif kind == "quartic":
        scale = rng.uniform(0.5, 1.5)

        def f(x):
            x = np.asarray(x, float)
            return float(scale * np.sum(x ** 4) / 4 + 0.5 * np.sum(x) ** 2)

        def grad(x):
            x = np.asarray(x, float)
            return scale * x ** 3 + np.sum(x)
    else:
        raise ValueError(f"unknown smooth function kind {kind!r}; known: {SMOOTH_KINDS}")
    return SmoothFunction(f"{kind}(seed={seed}, shape={shape})", f, grad)


@dataclass(frozen=True)
class Quadratic:
    """f(x) = 1/2 x^T A x - b^T x with A symmetric PSD and b in range(A), so a minimiser exists."""

    A: np.ndarray           # (n, n)
    b: np.ndarray           # (n,)
    x_star: np.ndarray      # (n,) a minimiser: A x* = b
    L: float                # largest eigenvalue of A

    def f(self, x):
        x = np.asarray(x, float)
        return float(0.5 * x @ self.A @ x - self.b @ x)

    def grad(self, x):
        return self.A @ np.asarray(x, dtype=np.float64) - self.b

    @property
    def f_star(self) -> float:
        return self.f(self.x_star)


def make_quadratic(seed: int, n: int, rank: int, scale: float = 1.0) -> Quadratic:
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, rank)) * scale
    A = M @ M.T                                                    # PSD of rank <= rank, (n, n)
    A = (A + A.T) / 2
    x_star = rng.standard_normal(n)
    return Quadratic(A=A, b=A @ x_star, x_star=x_star, L=float(np.linalg.eigvalsh(A)[-1]))


# ----------------------------------------------------------------- random graphs

# The random-graph tests (public and hidden) draw their seeds from 0 .. 2**31 - 1, the range
# they were graded with before the kit's public_seeds()/hidden_seeds(): with the kit's ranges
# four mutants' scores change (other graphs catch other bugs), and grades must not change when
# the suite is only reorganised. Every other a02 test draws from the kit's ranges.
GRAPH_SEEDS = st.integers(0, 2**31 - 1)


@dataclass(frozen=True)
class Op:
    """One node: `kind` applied to earlier nodes `args` (and a number `const`)."""

    kind: str
    args: tuple[int, ...]
    const: float | None = None


BINARY = ("add", "sub", "mul", "div")
WITH_NUMBER = ("add_number", "sub_number", "mul_number", "div_number",
               "number_add", "number_sub", "number_mul", "number_div")
UNARY = ("neg", "pow", "exp", "log", "tanh", "relu", "sigmoid")
EXPONENTS = (2.0, 3.0, 1.0, 0.0, -1.0, -2.0, 0.5, 1.5, 2.5)


def apply(op: Op, nodes: list):
    """Apply one op to student Values or torch tensors alike (same operators and methods)."""
    x = nodes[op.args[0]]
    c = op.const
    kind = op.kind
    if kind in BINARY:
        y = nodes[op.args[1]]
        return {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y, "div": lambda: x / y}[kind]()
    table = {
        "add_number": lambda: x + c, "sub_number": lambda: x - c,
        "mul_number": lambda: x * c, "div_number": lambda: x / c,
        "number_add": lambda: c + x, "number_sub": lambda: c - x,
        "number_mul": lambda: c * x, "number_div": lambda: c / x,
        "neg": lambda: -x, "pow": lambda: x ** c,
        "exp": lambda: x.exp(), "log": lambda: x.log(), "tanh": lambda: x.tanh(),
        "relu": lambda: x.relu(), "sigmoid": lambda: x.sigmoid(),
    }
    return table[kind]()


def _evaluate(op: Op, values: list[float]) -> float | None:
    """The op's value in float64, or None when it leaves the graded domain."""
    x = values[op.args[0]]
    c = op.const
    kind = op.kind
    if kind in ("div", "number_div"):
        denominator = values[op.args[1]] if kind == "div" else x
        if abs(denominator) < 0.2:
            return None
    if kind == "log" and x < 0.1 or kind == "exp" and x > 4.0:
        return None
    if kind in ("relu", "tanh") and abs(x) < 1e-2:
        return None                                  # away from relu's kink and tanh's cancellation
    if kind == "pow" and (abs(x) < 0.2 or (c != int(c) and x <= 0.2)):
        return None
    out = {
        "add": lambda: x + values[op.args[1]], "sub": lambda: x - values[op.args[1]],
        "mul": lambda: x * values[op.args[1]], "div": lambda: x / values[op.args[1]],
        "add_number": lambda: x + c, "sub_number": lambda: x - c, "mul_number": lambda: x * c,
        "div_number": lambda: x / c, "number_add": lambda: c + x, "number_sub": lambda: c - x,
        "number_mul": lambda: c * x, "number_div": lambda: c / x, "neg": lambda: -x,
        "pow": lambda: x ** c, "exp": lambda: math.exp(x), "log": lambda: math.log(x),
        "tanh": lambda: math.tanh(x), "relu": lambda: max(x, 0.0),
        "sigmoid": lambda: 1.0 / (1.0 + math.exp(-x)),
    }[kind]()
    return out if abs(out) <= 10.0 else None


@dataclass(frozen=True)
class Graph:
    leaves: tuple[float, ...]
    ops: tuple[Op, ...]

    @property
    def size(self) -> int:
        return len(self.leaves) + len(self.ops)

    def ancestors(self, index: int) -> list[int]:
        """Nodes `index` depends on, itself included, ascending: the graph of nodes[index]."""
        seen, stack = {index}, [index]
        while stack:
            node = stack.pop()
            if node >= len(self.leaves):
                for parent in self.ops[node - len(self.leaves)].args:
                    if parent not in seen:
                        seen.add(parent)
                        stack.append(parent)
        return sorted(seen)

    def describe(self) -> str:
        """The graph as code a student can paste: v0 = Value(...); v3 = v0 * v1; ..."""
        lines = [f"v{i} = Value({x!r})" for i, x in enumerate(self.leaves)]
        symbols = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
        for j, op in enumerate(self.ops):
            a = f"v{op.args[0]}"
            kind, c = op.kind, op.const
            if kind in BINARY:
                text = f"{a} {symbols[kind]} v{op.args[1]}"
            elif kind.endswith("_number"):
                text = f"{a} {symbols[kind.split('_')[0]]} {c!r}"
            elif kind.startswith("number_"):
                text = f"{c!r} {symbols[kind.split('_')[1]]} {a}"
            elif kind == "neg":
                text = f"-{a}"
            elif kind == "pow":
                text = f"{a} ** {c!r}"
            else:
                text = f"{a}.{kind}()"
            lines.append(f"v{len(self.leaves) + j} = {text}")
        return "; ".join(lines)


def random_graph(seed: int, num_leaves: int, num_ops: int, kinds: tuple[str, ...] | None = None, *,
                 leaves: tuple[float, ...] | None = None) -> Graph:
    """A random graph whose values stay in [-10, 10] and away from every kink and pole.

    Operands come mostly from the last few nodes (depth) and otherwise from anywhere
    (shared sub-expressions); some use one node twice (x * x, x + x).
    `leaves` fixes the leaf values (a second graph on the same leaves).
    """
    rng = np.random.default_rng(seed)
    kinds = kinds or BINARY * 3 + WITH_NUMBER + UNARY
    if leaves is None:
        leaves = tuple(float(np.round(rng.uniform(-2.0, 2.0), 3)) or 0.5 for _ in range(num_leaves))
    values = list(leaves)
    ops: list[Op] = []
    while len(ops) < num_ops:
        size = len(values)
        if rng.random() < 0.7:
            first = int(rng.integers(max(0, size - 3), size))
        else:
            first = int(rng.integers(size))
        kind = str(rng.choice(kinds))
        if kind == "relu" and values[first] < 0 and rng.random() < 0.75:
            kind = "tanh"                            # relu of a negative cuts every path through it
        if kind in BINARY:
            twice = kind in ("add", "mul") and rng.random() < 0.3     # x - x and x / x would cancel
            second = first if twice else int(rng.integers(size))
            op = Op(kind, (first, second))
        elif kind == "pow":                          # not ** 0 here: it would cut every path through it
            op = Op(kind, (first,), float(rng.choice([e for e in EXPONENTS if e != 0.0])))
        elif kind in WITH_NUMBER:
            op = Op(kind, (first,), float(np.round(rng.uniform(-3.0, 3.0), 2)) or 1.5)
        else:
            op = Op(kind, (first,))
        value = _evaluate(op, values)
        if value is None:
            op = Op("tanh", (first,)) if abs(values[first]) >= 1e-2 else Op("sigmoid", (first,))
            value = _evaluate(op, values)
        ops.append(op)
        values.append(value)
    return Graph(tuple(leaves), tuple(ops))


def deep_chain(start: float, w: float, x: float, cycles: int = 33) -> Graph:
    """Leaves v0 = start, v1 = w, v2 = x and a chain of 6 * cycles ops, each on the previous node.

    One cycle: v * w + x, exp, log, - x (the number), * (1/w) (the number). It maps v to v with
    derivative exactly 1, so all 3 + 6 * cycles grads stay of order 1 (nothing vanishes or
    explodes), while the leaves w and x collect one path per cycle, all of the same sign:
    d out / dx = cycles / w, which a grad assigned instead of accumulated misses.
    """
    ops: list[Op] = []
    for _ in range(cycles):
        last = 2 + len(ops)
        ops += [Op("mul", (last, 1)), Op("add", (last + 1, 2)), Op("exp", (last + 2,)), Op("log", (last + 3,)),
                Op("sub_number", (last + 4,), x), Op("mul_number", (last + 5,), 1.0 / w)]
    ops[0] = Op("mul", (0, 1))                   # the chain starts at v0
    return Graph((start, w, x), tuple(ops))


def single_op_graph(kind: str, seed: int) -> Graph:
    """Leaves v0 (and v1) and one op v2 = kind(v0[, v1]) with operands inside its domain."""
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        leaves = (float(rng.uniform(-3.0, 3.0)), float(rng.uniform(-3.0, 3.0)))
        const = float(rng.choice(EXPONENTS)) if kind == "pow" else float(np.round(rng.uniform(-3.0, 3.0), 3))
        op = Op(kind, (0, 1) if kind in BINARY else (0,), None if kind in BINARY or kind in UNARY and kind != "pow" else const)
        if kind in WITH_NUMBER and kind.endswith("div_number") and abs(const) < 0.2:
            continue
        if _evaluate(op, list(leaves)) is not None:
            return Graph(leaves, (op,))
    raise AssertionError(f"no operands found for {kind}")


def torch_values_and_grads(graph: Graph, output: int) -> tuple[list[float], dict[int, float]]:
    """Oracle: every node's value, and d(nodes[output])/d(node) for the nodes of its graph."""
    import torch

    nodes = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in graph.leaves]
    for op in graph.ops:
        node = apply(op, nodes)
        node.retain_grad()
        nodes.append(node)
    nodes[output].backward()
    grads = {i: (0.0 if nodes[i].grad is None else float(nodes[i].grad)) for i in graph.ancestors(output)}
    return [float(node.detach()) for node in nodes], grads


def build_student_graph(student, graph: Graph, leaves: list | None = None) -> list:
    """The same graph out of the student's Value (a list of handles, one per node).

    `leaves`: existing Values to use as the leaves, so that two graphs share them.
    """
    nodes = list(leaves) if leaves is not None else [student.Value(x) for x in graph.leaves]
    for op in graph.ops:
        nodes.append(apply(op, nodes))
    return nodes


def assert_grads_close(actual: dict[int, float], expected: dict[int, float], what: str) -> None:
    """Every node's grad within GRAPH of torch's, scaled by the largest grad of the graph."""
    scale = max([1.0] + [abs(g) for g in expected.values()])
    for node, want in expected.items():
        got = actual[node]
        if not isinstance(got, (int, float, np.floating, np.integer)) or isinstance(got, bool):
            raise AssertionError(f"{what}: .grad of node v{node} should be a float, got {type(got).__name__}")
        if not abs(float(got) - want) <= GRAPH.rtol * abs(want) + GRAPH.atol * scale:
            raise AssertionError(
                f"{what}: .grad of node v{node} is {float(got):.12g}, expected {want:.12g} "
                f"(torch autograd, float64; {GRAPH} of the largest grad {scale:.3g})"
            )


# ----------------------------------------------------------------- namespaces handed out as fixtures

class Graphs:
    """The random-graph instruments, as one fixture."""

    tolerance = GRAPH
    random = staticmethod(random_graph)
    single = staticmethod(single_op_graph)
    deep_chain = staticmethod(deep_chain)
    KINDS = BINARY + WITH_NUMBER + UNARY
    oracle = staticmethod(torch_values_and_grads)
    build = staticmethod(build_student_graph)
    assert_grads_close = staticmethod(assert_grads_close)
    Graph = Graph
    Op = Op


class Tolerances:
    """Named tolerances of this suite (float64 throughout), each with its reason."""

    # Student vs reference numerical gradient, same central-difference formula: the points
    # x +- h e_i may differ by an ulp of x (restore-in-place vs copy), which moves f by
    # ~|f'| ulp(x) and the quotient by ~1e-11; rounding of f itself adds eps |f| / h ~ 1e-9
    # for |f| ~ 100. A one-sided difference is off by h |f''| / 2 ~ 5e-6.
    NUMERICAL_GRADIENT = Tolerance(rtol=1e-7, atol=1e-7)

    @staticmethod
    def numerical_gradient(f_scale: float, h: float) -> Tolerance:
        """NUMERICAL_GRADIENT widened by f's own rounding, eps |f| / h, which shows as soon as
        the evaluation points differ by an ulp (restore-in-place drift): 20x for margin."""
        return Tolerance(rtol=1e-7, atol=1e-7 + 20 * float(np.finfo(np.float64).eps) * (1.0 + f_scale) / h)
    # Numerical vs analytic gradient: truncation h^2 |f'''| / 6 plus rounding eps |f| / h.
    ANALYTIC = Tolerance(rtol=1e-6, atol=1e-6)
    # gradient_check's value, student vs reference: a relative error of two gradients whose
    # numerical one moves by rounding (see above), ~1e-9 of the gradient.
    GRADIENT_CHECK = Tolerance(rtol=1e-6, atol=1e-9)
    # Trajectories, step sizes, eigenvalues: float64 arithmetic in another order (x - lr*g
    # vs x + (-lr)*g, alpha0*beta**k vs repeated alpha *= beta, eigh vs svd) differs by ulps.
    FLOAT64 = FLOAT64
    # Trajectory vs the closed form x* + (I - lr A)^t (x0 - x*): matrix powers round
    # differently from t gradient steps, ~t ulps of |x0 - x*|; entries can approach 0.
    CLOSED_FORM = Tolerance(rtol=1e-9, atol=1e-10)
    GRAPH = GRAPH
