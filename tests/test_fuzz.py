"""Differential testing: random programs run in micrograd_plus and in PyTorch (float64), outputs and gradients compared.

A program starts from a few leaves (random shapes, 0-d and size-1 axes included, broadcast-compatible) and
applies a random sequence of operations to random earlier nodes, so nodes are reused: elementwise functions,
broadcasting arithmetic, matmul, reductions with ``axis``/``keepdims``, reshape, transpose and indexing. The
loss is a weighted sum of the last nodes; every leaf's gradient must match PyTorch's.

``make test`` runs a few hundred programs through hypothesis (which shrinks a failure to a small program);
``make fuzz N=10000`` runs many more, drawn from a seeded generator, and prints ``mismatches=0 of N``
(``python -m tests.test_fuzz --n 10000``). The same is done for the scalar ``Value`` against PyTorch scalars.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from micrograd_plus.tensor import Tensor  # noqa: E402
from micrograd_plus.value import Value  # noqa: E402

RTOL, ATOL = 1e-9, 1e-12


# ---------------------------------------------------------------- where the random choices come from
class HypothesisChoices:
    """Random choices drawn by hypothesis (shrinkable)."""

    def __init__(self, data):
        self.data = data

    def integer(self, low, high):
        return self.data.draw(st.integers(low, high))

    def uniform(self, shape, low=-2.0, high=2.0):
        n = int(np.prod(shape, dtype=int))
        values = self.data.draw(st.lists(st.floats(low, high, allow_nan=False), min_size=n, max_size=n))
        return np.array(values, dtype=np.float64).reshape(shape)


class SeededChoices:
    """The same choices from a seeded NumPy generator (fast, for ``make fuzz``)."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def integer(self, low, high):
        return int(self.rng.integers(low, high + 1))

    def uniform(self, shape, low=-2.0, high=2.0):
        return self.rng.uniform(low, high, size=shape)


# ---------------------------------------------------------------- tensor programs
UNARY = ["tanh", "sigmoid", "relu", "neg", "square", "log1p_sq", "exp_tanh"]
BINARY = ["add", "sub", "mul", "div"]
SHAPE_OPS = ["sum", "mean", "max", "reshape", "transpose", "index", "matmul"]


def _leaf_shapes(choose):
    """1-3 shapes that broadcast together: a base shape with some axes set to 1 or leading axes dropped."""
    base = tuple(choose.integer(1, 3) for _ in range(choose.integer(0, 3)))
    shapes = []
    for _ in range(choose.integer(1, 3)):
        drop = choose.integer(0, len(base))
        shapes.append(tuple(1 if choose.integer(0, 3) == 0 else n for n in base[drop:]))
    return shapes


def make_tensor_program(choose):
    """A program: leaf arrays and a list of instructions ``(op, argument indices, parameters)``."""
    leaves = [choose.uniform(shape) for shape in _leaf_shapes(choose)]
    shapes = [a.shape for a in leaves]
    program = []
    for _ in range(choose.integer(1, 7)):
        kind = choose.integer(0, 2)
        a = choose.integer(0, len(shapes) - 1)
        sa = shapes[a]
        if kind == 0:
            op = UNARY[choose.integer(0, len(UNARY) - 1)]
            program.append((op, (a,), None))
            shapes.append(sa)
        elif kind == 1:
            b = choose.integer(0, len(shapes) - 1)
            try:
                shape = np.broadcast_shapes(sa, shapes[b])
            except ValueError:
                continue
            program.append((BINARY[choose.integer(0, len(BINARY) - 1)], (a, b), None))
            shapes.append(shape)
        else:
            op = SHAPE_OPS[choose.integer(0, len(SHAPE_OPS) - 1)]
            if op in ("sum", "mean", "max"):
                if len(sa) == 0 or choose.integer(0, 2) == 0:
                    axis = None
                else:
                    axis = choose.integer(0, len(sa) - 1)
                keepdims = bool(choose.integer(0, 1))
                out = np.zeros(sa).sum(axis=axis, keepdims=keepdims).shape
                program.append((op, (a,), (axis, keepdims)))
            elif op == "reshape":
                program.append((op, (a,), None))
                out = (int(np.prod(sa, dtype=int)),)
            elif op == "transpose":
                program.append((op, (a,), None))
                out = sa[::-1]
            elif op == "index":
                if len(sa) == 0:
                    continue
                i = choose.integer(-sa[0], sa[0] - 1)
                program.append((op, (a,), i))
                out = sa[1:]
            else:  # matmul with a node of matching inner size, or with its own transpose
                if len(sa) != 2:
                    continue
                partners = [j for j, s in enumerate(shapes) if len(s) == 2 and s[0] == sa[1]]
                if partners:
                    b = partners[choose.integer(0, len(partners) - 1)]
                    program.append(("matmul", (a, b), None))
                    out = (sa[0], shapes[b][1])
                else:
                    program.append(("matmul_t", (a,), None))
                    out = (sa[0], sa[0])
            shapes.append(out)
    return leaves, program, shapes


def run_tensor_program(leaves, program, shapes, lib):
    """Run the program in ``lib`` ("mp" or "torch"); returns (loss value, [leaf gradients as float64 arrays])."""
    if lib == "mp":
        nodes = [Tensor(a, dtype=np.float64, requires_grad=True) for a in leaves]
    else:
        nodes = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in leaves]
    inputs = list(nodes)
    for op, args, param in program:
        x = nodes[args[0]]
        if op == "tanh":
            y = x.tanh()
        elif op == "sigmoid":
            y = x.sigmoid()
        elif op == "relu":
            y = x.relu()
        elif op == "neg":
            y = -x
        elif op == "square":
            y = x * x
        elif op == "log1p_sq":
            y = (x * x + 1.0).log()
        elif op == "exp_tanh":
            y = x.tanh().exp()
        elif op == "add":
            y = x + nodes[args[1]]
        elif op == "sub":
            y = x - nodes[args[1]]
        elif op == "mul":
            y = x * nodes[args[1]]
        elif op == "div":
            d = nodes[args[1]]
            y = x / (d * d + 0.5)
        elif op in ("sum", "mean", "max"):
            axis, keepdims = param
            if lib == "mp":
                y = getattr(x, op)(axis=axis, keepdims=keepdims)
            elif axis is None:
                y = getattr(x, "amax" if op == "max" else op)()
                if keepdims:
                    y = y.reshape((1,) * x.dim())
            else:
                y = getattr(x, "amax" if op == "max" else op)(dim=axis, keepdim=keepdims)
        elif op == "reshape":
            y = x.reshape(-1)
        elif op == "transpose":
            y = x.transpose() if lib == "mp" else x.permute(tuple(reversed(range(x.dim()))))
        elif op == "index":
            y = x[param]
        elif op == "matmul":
            y = x @ nodes[args[1]]
        elif op == "matmul_t":
            y = x @ (x.T if lib == "mp" else x.t())
        else:  # pragma: no cover
            raise ValueError(op)
        assert tuple(y.shape) == shapes[len(nodes)], (op, tuple(y.shape), shapes[len(nodes)])
        nodes.append(y)
    # the loss reuses the last nodes (and so the whole graph) with fixed weights
    loss = None
    for k, node in enumerate(nodes[-3:]):
        term = node.sum() * (1.0 + 0.5 * k)
        loss = term if loss is None else loss + term
    loss.backward()
    if lib == "mp":
        return loss.item(), [
            np.zeros(t.shape) if t.grad is None else np.asarray(t.grad, dtype=np.float64) for t in inputs
        ]
    return loss.item(), [np.zeros(tuple(t.shape)) if t.grad is None else t.grad.numpy() for t in inputs]


def tensor_mismatch(choose):
    """None if micrograd_plus and PyTorch agree on a random program, else a description of the difference."""
    leaves, program, shapes = make_tensor_program(choose)
    where = f"leaves {[a.shape for a in leaves]}, program {program}"
    theirs = run_tensor_program(leaves, program, shapes, "torch")
    try:
        ours = run_tensor_program(leaves, program, shapes, "mp")
    except Exception as error:  # noqa: BLE001 - reported as a mismatch with the program that raised it
        return f"micrograd_plus raised {type(error).__name__}: {error}; {where}"
    if not math.isclose(ours[0], theirs[0], rel_tol=RTOL, abs_tol=ATOL):
        return f"loss {ours[0]!r} vs torch {theirs[0]!r}; {where}"
    for i, (g, h) in enumerate(zip(ours[1], theirs[1])):
        if g.shape != h.shape or not np.allclose(g, h, rtol=RTOL, atol=ATOL):
            return f"gradient of leaf {i}: {g} vs torch {h}; {where}"
    return None


# ---------------------------------------------------------------- Value programs
VALUE_UNARY = [
    "tanh",
    "sigmoid",
    "relu",
    "neg",
    "square",
    "cube",
    "log1p_sq",
    "exp_tanh",
    "sqrt1p_sq",
    "radd",
    "rsub",
    "rmul",
    "rdiv",
]
VALUE_BINARY = ["add", "sub", "mul", "div"]


def make_value_program(choose):
    leaves = [float(v) for v in choose.uniform((choose.integer(1, 4),))]
    program = []
    for _ in range(choose.integer(1, 10)):
        n = len(leaves) + len(program)
        if choose.integer(0, 1):
            program.append((VALUE_UNARY[choose.integer(0, len(VALUE_UNARY) - 1)], (choose.integer(0, n - 1),)))
        else:
            program.append((VALUE_BINARY[choose.integer(0, 3)], (choose.integer(0, n - 1), choose.integer(0, n - 1))))
    return leaves, program


def run_value_program(leaves, program, lib):
    make = Value if lib == "mp" else (lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True))
    nodes = [make(x) for x in leaves]
    inputs = list(nodes)
    for op, args in program:
        x = nodes[args[0]]
        y = nodes[args[1]] if len(args) > 1 else None
        out = {
            "tanh": lambda: x.tanh(),
            "sigmoid": lambda: x.sigmoid(),
            "relu": lambda: x.relu(),
            "neg": lambda: -x,
            "square": lambda: x**2,
            "cube": lambda: x**3,
            "log1p_sq": lambda: (x * x + 1).log(),
            "exp_tanh": lambda: x.tanh().exp(),
            "sqrt1p_sq": lambda: (x * x + 1) ** 0.5,
            "radd": lambda: 1.5 + x,
            "rsub": lambda: 1.5 - x,
            "rmul": lambda: 1.5 * x,
            "rdiv": lambda: 1.5 / (x * x + 0.5),
            "add": lambda: x + y,
            "sub": lambda: x - y,
            "mul": lambda: x * y,
            "div": lambda: x / (y * y + 0.5),
        }[op]()
        nodes.append(out)
    loss = nodes[-1] + nodes[-2] * 0.5 if len(nodes) > 1 else nodes[-1]
    loss.backward()
    if lib == "mp":
        return loss.data, [v.grad for v in inputs]
    return loss.item(), [0.0 if t.grad is None else t.grad.item() for t in inputs]


def value_mismatch(choose):
    leaves, program = make_value_program(choose)
    where = f"leaves {leaves}, program {program}"
    theirs = run_value_program(leaves, program, "torch")
    try:
        ours = run_value_program(leaves, program, "mp")
    except Exception as error:  # noqa: BLE001
        return f"micrograd_plus raised {type(error).__name__}: {error}; {where}"
    if not math.isclose(ours[0], theirs[0], rel_tol=RTOL, abs_tol=ATOL):
        return f"loss {ours[0]!r} vs torch {theirs[0]!r}; {where}"
    for i, (g, h) in enumerate(zip(ours[1], theirs[1])):
        if not math.isclose(g, h, rel_tol=RTOL, abs_tol=ATOL):
            return f"gradient of leaf {i}: {g!r} vs torch {h!r}; {where}"
    return None


# ---------------------------------------------------------------- the tests (a few hundred programs each)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.data())
def test_random_tensor_programs_match_torch(data):
    mismatch = tensor_mismatch(HypothesisChoices(data))
    assert mismatch is None, mismatch


@FUZZ
@given(st.data())
def test_random_value_programs_match_torch(data):
    mismatch = value_mismatch(HypothesisChoices(data))
    assert mismatch is None, mismatch


def test_the_generator_covers_every_op():
    seen = set()
    for seed in range(300):
        seen.update(op for op, _, _ in make_tensor_program(SeededChoices(seed))[1])
    assert set(UNARY + BINARY + SHAPE_OPS) <= seen | {"matmul_t"}
    shapes = [a.shape for seed in range(300) for a in make_tensor_program(SeededChoices(seed))[0]]
    assert () in shapes and any(1 in s for s in shapes)  # 0-d leaves and size-1 axes


def test_a_wrong_gradient_is_caught(monkeypatch):
    from micrograd_plus import tensor

    original = tensor.TanhFunction.backward

    def off_by_a_bit(ctx, grad):
        return original(ctx, grad) * (1 + 1e-6)

    monkeypatch.setattr(tensor.TanhFunction, "backward", staticmethod(off_by_a_bit))
    leaves = [np.array([[0.5, -1.0]])]
    mismatch = None
    ours = run_tensor_program(leaves, [("tanh", (0,), None)], [(1, 2), (1, 2)], "mp")
    theirs = run_tensor_program(leaves, [("tanh", (0,), None)], [(1, 2), (1, 2)], "torch")
    if not np.allclose(ours[1][0], theirs[1][0], rtol=RTOL, atol=ATOL):
        mismatch = "caught"
    assert mismatch == "caught"


# ---------------------------------------------------------------- make fuzz N=...
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="micrograd_plus vs PyTorch on random programs")
    parser.add_argument("--n", type=int, default=10000, help="programs per engine")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    failures = 0
    for name, check in (("Tensor", tensor_mismatch), ("Value", value_mismatch)):
        mismatches = 0
        for i in range(args.n):
            problem = check(SeededChoices((args.seed, i)))
            if problem is not None:
                mismatches += 1
                if mismatches <= 5:
                    print(f"{name} program {i}: {problem}")
        print(f"{name:6s} mismatches={mismatches} of {args.n}")
        failures += mismatches
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
