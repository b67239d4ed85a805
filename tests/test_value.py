"""The scalar autograd engine (micrograd_plus.value) and the scalar networks (micrograd_plus.scalar_nn).

Every op of ``VALUE_OPS`` (the table the lab's graded cells use too) is checked against numerical
differentiation in float64 and against PyTorch; then micrograd's published examples, graph edge cases
(reused nodes, backward twice, a 10**6-node chain), errors, drawing, and the moons classifier.
"""

import contextlib
import math
import gc
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from micrograd_plus.scalar_nn import (
    MLP,
    Layer,
    Neuron,
    binary_accuracy,
    make_moons,
    max_margin_loss,
    plot_decision_boundary,
)
from micrograd_plus.drawing import draw_graph
from micrograd_plus.scalar_testing import (
    VALUE_OPS,
    OpCase,
    check_op,
    numerical_derivative,
    op_case,
    rel_error,
    sample_inputs,
)
from micrograd_plus.value import Value, topological_order

OP_IDS = [case.name for case in VALUE_OPS]


@contextlib.contextmanager
def without_line_tracing():
    """Pause a line tracer (coverage) for a long loop whose lines other tests cover: it runs ~10x faster."""
    tracer = sys.gettrace()
    sys.settrace(None)
    try:
        yield
    finally:
        sys.settrace(tracer)


def t64(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


# ---------------------------------------------------------------- every op: numerical and PyTorch
@pytest.mark.parametrize("case", VALUE_OPS, ids=OP_IDS)
def test_op_matches_numerical_gradient(case):
    assert check_op(case, sample_inputs(case, n=5, seed=1)) < 1e-6


@pytest.mark.parametrize("case", VALUE_OPS, ids=OP_IDS)
def test_op_matches_torch(case):
    for xs in sample_inputs(case, n=5, seed=2):
        ours = [Value(x) for x in xs]
        out = case.fn(*ours)
        out.backward()
        theirs = [t64(x) for x in xs]
        expected = case.fn(*theirs)
        expected.backward()
        assert out.data == pytest.approx(expected.item(), rel=1e-12, abs=1e-15), f"{case.name} forward at {xs}"
        for i, (v, t) in enumerate(zip(ours, theirs)):
            assert v.grad == pytest.approx(t.grad.item(), rel=1e-12, abs=1e-15), f"{case.name} grad {i} at {xs}"


def test_the_table_covers_every_op():
    names = " ".join(OP_IDS)
    for op in [
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "neg",
        "radd",
        "rsub",
        "rmul",
        "rtruediv",
        "exp",
        "log",
        "tanh",
        "relu",
        "sigmoid",
    ]:
        assert op in names


def test_exact_known_values():
    a, b = Value(3.0), Value(-2.0)
    c = a * b + a / b - b**2
    c.backward()
    assert c.data == -6.0 - 1.5 - 4.0
    assert a.grad == -2.0 + 1 / -2.0
    assert b.grad == 3.0 - 3.0 / 4.0 + 4.0


# ---------------------------------------------------------------- micrograd's published examples
def _micrograd_readme(a, b):
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g


def _micrograd_sanity(x):
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    return h + q + q * x


def test_micrograd_readme_golden_values():
    a, b = Value(-4.0), Value(2.0)
    g = _micrograd_readme(a, b)
    g.backward()
    at, bt = t64(-4.0), t64(2.0)
    gt = _micrograd_readme(at, bt)
    gt.backward()
    assert f"{g.data:.4f} {a.grad:.4f} {b.grad:.4f}" == "24.7041 138.8338 645.5773"  # micrograd's README
    assert g.data == pytest.approx(gt.item(), rel=1e-12)
    assert a.grad == pytest.approx(at.grad.item(), rel=1e-12)
    assert b.grad == pytest.approx(bt.grad.item(), rel=1e-12)


def test_micrograd_sanity_check_expression():
    x = Value(-4.0)
    y = _micrograd_sanity(x)
    y.backward()
    xt = t64(-4.0)
    yt = _micrograd_sanity(xt)
    yt.backward()
    assert (y.data, x.grad) == (-20.0, 46.0)
    assert (y.data, x.grad) == (yt.item(), xt.grad.item())


# ---------------------------------------------------------------- graph structure
def test_reused_non_leaf_nodes():
    a = Value(3.0)
    b = a + a
    c = b + b
    c.backward()
    assert (a.grad, b.grad, c.grad) == (4.0, 2.0, 1.0)
    assert topological_order(c) == [a, b, c]


def test_topological_order_on_a_diamond():
    a = Value(2.0)
    b = a * a
    c = b + a
    d = c * b
    order = topological_order(d)
    assert len(order) == 4 and len(set(map(id, order))) == 4 and order[-1] is d
    position = {id(v): i for i, v in enumerate(order)}
    assert all(position[id(child)] < position[id(v)] for v in order for child in v._prev)
    d.backward()
    at = t64(2.0)
    bt = at * at
    ((bt + at) * bt).backward()
    assert a.grad == at.grad.item() == 4 * 2.0**3 + 3 * 2.0**2


def test_backward_twice_accumulates_like_torch():
    x, w = Value(1.5), Value(-2.0)
    y = (x * w).tanh() * x
    y.backward()
    y.backward()
    xt, wt = t64(1.5), t64(-2.0)
    yt = (xt * wt).tanh() * xt
    yt.backward(retain_graph=True)
    yt.backward()
    assert x.grad == pytest.approx(xt.grad.item(), rel=1e-12)
    assert w.grad == pytest.approx(wt.grad.item(), rel=1e-12)
    assert y.grad == 1.0  # the root's own gradient is that of the latest call


def test_zero_grad_and_gradient_argument():
    x = Value(3.0)
    y = x * x
    y.backward(gradient=2.0)
    assert x.grad == 12.0
    y.zero_grad()
    assert (x.grad, y.grad) == (0.0, 0.0)
    leaf = Value(1.0)
    leaf.backward()
    leaf.backward()
    assert leaf.grad == 2.0  # a leaf root accumulates too, like a PyTorch leaf


@pytest.mark.slow
def test_million_node_chain_backward():
    with without_line_tracing():
        x = Value(0.5)
        y = x
        for _ in range(10**6):
            y = -y
        y.backward()
        size = len(topological_order(y))
        del y  # freeing the chain must not recurse either
    assert x.grad == 1.0
    assert size == 10**6 + 1


def test_deep_chain_without_recursion():
    x = Value(0.5)
    y = x
    for _ in range(5 * sys.getrecursionlimit()):
        y = y.relu()
    y.backward()
    assert x.grad == 1.0


# ---------------------------------------------------------------- the Value object
def test_value_basics():
    v = Value(2, label="v")
    assert v.data == 2.0 and type(v.data) is float and v.item() == 2.0
    assert repr(v) == "Value(data=2.0, grad=0.0, label='v')"
    assert repr(Value(1.0)) == "Value(data=1.0, grad=0.0)"
    assert Value(np.float32(0.5)).data == 0.5 and Value(True).data == 1.0
    w = v * 3
    assert w._prev == (v, w._prev[1]) and w._prev[1].data == 3.0 and w._op == "*"
    assert (-v)._prev == (v,) and v._prev == ()
    assert Value(5.0, (v,), "custom")._prev == (v,) and Value(5.0, [v])._prev == (v,)
    assert v._backward() is None  # a leaf's _backward does nothing


def test_backward_closures_as_the_course_documents_write_them():
    a, b = Value(2.0), Value(-3.0)
    c = a * b
    c.grad = 1.0
    c._backward()  # one step of the chain rule, by hand
    assert (a.grad, b.grad) == (-3.0, 2.0)

    def cube(self):  # a user-defined op in the documents' style composes with the built-in ones
        out = Value(self.data**3, (self,), "cube")

        def _backward():
            self.grad += 3 * self.data**2 * out.grad

        out._backward = _backward
        return out

    x = Value(2.0)
    y = cube(x) * x + x
    y.backward()
    assert (y.data, x.grad) == (18.0, 4 * 8.0 + 1)


@pytest.mark.parametrize("op", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("x", [-1000.0, 0.0, 1000.0])
def test_activation_extremes_match_torch(op, x):
    v = Value(x)
    out = getattr(v, op)()
    out.backward()
    t = t64(x)
    expected = getattr(t, op)()
    expected.backward()
    assert (out.data, v.grad) == (expected.item(), t.grad.item())


@pytest.mark.parametrize(
    "bad, name",
    [("1.0", "str"), ([1.0, 2.0], "list"), (None, "NoneType"), (1 + 2j, "complex"), (np.ones(3), "ndarray")],
)
def test_non_numeric_data_raises_type_error(bad, name):
    with pytest.raises(TypeError, match=f"real number.*got {name}"):
        Value(bad)
    with pytest.raises(TypeError, match=f"got {name}"):
        Value(1.0) + bad


@pytest.mark.parametrize("exponent", [Value(2.0), "2", None, 1j])
def test_unsupported_exponent_raises_type_error(exponent):
    with pytest.raises(TypeError, match="int or float exponent"):
        Value(2.0) ** exponent


def test_domain_errors():
    with pytest.raises(ValueError, match="non-integer power"):
        Value(-8.0) ** (1 / 3)
    for x in (0.0, -1.0):
        with pytest.raises(ValueError, match="log of a non-positive number"):
            Value(x).log()
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        Value(1.0) / 0
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        1.0 / Value(0.0)
    with pytest.raises(OverflowError, match="exp overflows"):
        Value(1000.0).exp()
    with pytest.raises(TypeError, match="unsupported operand"):
        2 ** Value(1.0)


def test_pow_edge_cases_like_torch():
    for x, n in [(0.0, 0.5), (0.0, 0), (0.0, 2), (-2.0, 3), (-2.0, 2.0), (0.0, 1)]:
        v = Value(x)
        out = v**n
        out.backward()
        t = t64(x)
        (t**n).backward()
        assert out.data == (t**n).item()
        assert v.grad == t.grad.item(), f"x={x}, n={n}"


def test_relu_and_sigmoid_extremes():
    z = Value(0.0)
    z.relu().backward()
    assert z.grad == 0.0  # like PyTorch
    for x in (-800.0, 800.0):
        v = Value(x)
        s = v.sigmoid()
        s.backward()
        assert s.data == (1.0 if x > 0 else 0.0) and v.grad == 0.0


def test_numerical_derivative():
    assert numerical_derivative(math.sin, 0.3) == pytest.approx(math.cos(0.3), rel=1e-9)
    assert numerical_derivative(lambda x: x**3, 2.0, h=1e-4) == pytest.approx(12.0, rel=1e-7)


# ---------------------------------------------------------------- the checking kit
def _exp_with_wrong_gradient(a):
    e = math.exp(a.data)
    out = Value(e, (a,), "exp")

    def _backward():  # the right forward value, a local derivative 1% off
        a.grad += 1.01 * e * out.grad

    out._backward = _backward
    return out


def _mul_overwriting_its_right_input(a, b):
    out = Value(a.data * b.data, (a, b), "*")

    def _backward():
        a.grad += b.data * out.grad
        b.grad = a.data * out.grad  # = instead of +=: a second use of b is lost

    out._backward = _backward
    return out


def test_check_op_reports_wrong_results():
    scaled = OpCase("2 tanh", lambda a: a.tanh() * 2, lambda a: 2 * math.tanh(a), ((0.1, 1),))
    assert check_op(scaled) < 1e-6
    wrong_forward = OpCase("relu", lambda a: a.relu(), lambda a: max(a, 0.0) + 1e-3 * a * a, ((1.0, 2.0),))
    with pytest.raises(AssertionError, match=r"op 'relu' at inputs .*forward expected .*\(relative error"):
        check_op(wrong_forward)
    wrong_gradient = OpCase("exp", _exp_with_wrong_gradient, math.exp, ((0.0, 1.0),))
    with pytest.raises(
        AssertionError,
        match=r"op 'exp' at inputs \(0.5,\): gradient of input 0 expected "
        r"1.6487.* \(numerical\), got 1.665.* \(relative error 5.0e-03\)",
    ):
        check_op(wrong_gradient, [(0.5,)])
    overwriting = OpCase("mul", _mul_overwriting_its_right_input, lambda a, b: a * b, ((1.0, 2.0), (1.0, 2.0)))
    with pytest.raises(AssertionError, match=r"input 1 used by two 'mul' nodes: .*\+= \?"):
        check_op(overwriting)
    not_a_value = OpCase("float", lambda a: a.data, lambda a: a, ((1.0, 2.0),))
    with pytest.raises(AssertionError, match="expected a Value, got float"):
        check_op(not_a_value)


def test_op_case_and_rel_error():
    assert op_case("log").ref(1.0) == 0.0
    with pytest.raises(KeyError, match="no op 'nope'.*add"):
        op_case("nope")
    assert rel_error(0.0, 0.0) == 0.0 and rel_error(2.0, 1.0) == 1 / 3
    assert rel_error(1.0, -1.0) == 1.0 and rel_error(1e-9, 0.0) == pytest.approx(0.1)  # the 1e-8 floor
    assert sample_inputs(op_case("div"), n=2) == sample_inputs(op_case("div"), n=2)
    assert all(0.5 <= b <= 3 for _, b in sample_inputs(op_case("div"), n=20))


# ---------------------------------------------------------------- drawing
def test_draw_graph_shows_data_grad_and_op():
    pytest.importorskip("graphviz")
    a = Value(2.0, label="a{1}")
    b = (a * 3.5).tanh()
    b.backward()
    dot = draw_graph(b, rankdir="TB")
    src = dot.source
    assert "data 2.0000" in src and "data 7.0000" in src and f"grad {a.grad:.4f}" in src
    assert "tanh" in src and "*" in src and "rankdir=TB" in src
    assert "a\\{1\\}" in src  # record-label characters are escaped
    assert draw_graph(b).source == src.replace("rankdir=TB", "rankdir=LR")  # deterministic


def test_draw_graph_without_graphviz(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match=r"micrograd-plus\[viz\]"):
        draw_graph(Value(1.0))


# ---------------------------------------------------------------- scalar networks and the moons
def test_make_moons_shape_and_determinism():
    X, y = make_moons(n_samples=101, noise=0.1, seed=3)
    assert X.shape == (101, 2) and X.dtype == np.float64 and y.shape == (101,) and y.dtype == np.int64
    assert (y == 0).sum() == 50 and (y == 1).sum() == 51
    X2, y2 = make_moons(n_samples=101, noise=0.1, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    X3, _ = make_moons(n_samples=101, noise=0.1, seed=4)
    assert not np.array_equal(X, X3)


def test_make_moons_geometry_and_errors():
    X, y = make_moons(n_samples=20, noise=0.0, shuffle=False)
    assert np.array_equal(y, [0] * 10 + [1] * 10)
    assert np.allclose(np.hypot(X[:10, 0], X[:10, 1]), 1.0)  # the upper moon: the unit half circle
    assert np.allclose(np.hypot(X[10:, 0] - 1, X[10:, 1] - 0.5), 1.0)  # the lower moon, shifted
    with pytest.raises(ValueError, match="n_samples >= 2"):
        make_moons(1)
    with pytest.raises(ValueError, match="noise >= 0"):
        make_moons(10, noise=-1)


def test_networks_api():
    model = MLP(2, [16, 16, 1], seed=0)
    assert len(model.parameters()) == 337
    assert [p.data for p in model.parameters()] == [p.data for p in MLP(2, [16, 16, 1], seed=0).parameters()]
    assert [p.data for p in model.parameters()] != [p.data for p in MLP(2, [16, 16, 1], seed=1).parameters()]
    assert repr(MLP(2, [3, 1], seed=0)) == (
        "MLP of [Layer of [ReLUNeuron(2), ReLUNeuron(2), ReLUNeuron(2)], Layer of [LinearNeuron(3)]]"
    )
    out = Layer(2, 3, seed=0)([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 3
    assert isinstance(Layer(2, 1, seed=0)([1.0, 2.0]), Value)
    neuron = Neuron(2, nonlin=False, seed=0)
    neuron.load_parameters([Value(2.0), -1.0, 0.5])
    o = neuron([3.0, 4.0])
    assert o.data == 0.5 + 6.0 - 4.0
    o.backward()
    assert [p.grad for p in neuron.parameters()] == [3.0, 4.0, 1.0]
    neuron.zero_grad()
    assert [p.grad for p in neuron.parameters()] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="Neuron has 3 parameters, got 2 values"):
        neuron.load_parameters([1.0, 2.0])
    from micrograd_plus.scalar_nn import Module

    assert Module().parameters() == []


def test_loss_and_accuracy():
    model = MLP(2, [1], seed=0)
    model.load_parameters([1.0, 0.0, 0.0])
    assert binary_accuracy(model, [[1.0, 0.0], [-1.0, 0.0]], [1, 0]) == 1.0
    assert binary_accuracy(model, [[1.0, 0.0], [-1.0, 0.0]], [-1, 1]) == 0.0
    loss, acc = max_margin_loss(model, [[2.0, 0.0], [0.5, 0.0]], [1, 1], alpha=0.0)
    assert loss.data == (0.0 + 0.5) / 2 and acc == 1.0
    loss, _ = max_margin_loss(model, [[2.0, 0.0]], [1], alpha=0.5)
    assert loss.data == 0.5 * 1.0
    with pytest.raises(ValueError, match="X has 2 rows but y has 1 labels"):
        max_margin_loss(model, [[1.0, 0.0], [0.0, 1.0]], [1])


def test_same_numbers_as_micrograd_given_the_same_weights():
    micrograd = pytest.importorskip("micrograd.nn")
    from micrograd.engine import Value as MValue

    X, y = make_moons(n_samples=20, noise=0.1, seed=0)
    X, y = X.tolist(), (y * 2 - 1).tolist()
    ours = MLP(2, [8, 8, 1], seed=0)
    theirs = micrograd.MLP(2, [8, 8, 1])
    for p, q in zip(theirs.parameters(), ours.parameters()):
        p.data = q.data
    for _k in range(3):
        loss, _ = max_margin_loss(ours, X, y)
        ours.zero_grad()
        loss.backward()
        scores = [theirs(list(map(MValue, row))) for row in X]
        data_loss = sum((1 + -yi * si).relu() for yi, si in zip(y, scores)) * (1.0 / len(y))
        ref = data_loss + 1e-4 * sum(p * p for p in theirs.parameters())
        theirs.zero_grad()
        ref.backward()
        assert loss.data == pytest.approx(ref.data, rel=1e-12, abs=1e-15)
        for p, q in zip(ours.parameters(), theirs.parameters()):
            assert p.grad == pytest.approx(q.grad, rel=1e-9, abs=1e-15)
            p.data -= 0.5 * p.grad
            q.data -= 0.5 * q.grad


@pytest.mark.slow
def test_moons_classifier_reaches_full_training_accuracy():
    X, y = make_moons(n_samples=100, noise=0.1, seed=1)
    labels = y * 2 - 1
    model = MLP(2, [16, 16, 1], seed=0)
    gc.disable()  # lab 01's recipe: no automatic collection during a step, one after it
    try:
        with without_line_tracing():
            for k in range(100):
                loss, _ = max_margin_loss(model, X, labels)
                model.zero_grad()
                loss.backward()
                for p in model.parameters():
                    p.data -= (1.0 - 0.9 * k / 100) * p.grad
                final_loss = loss.data
                del loss  # the step's graph is unreachable: it is all in the youngest generation
                gc.collect(0)
    finally:
        gc.enable()
    assert binary_accuracy(model, X, y) == 1.0
    assert final_loss < 0.02


def test_plot_decision_boundary(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = make_moons(n_samples=10, noise=0.1, seed=0)
    model = MLP(2, [4, 1], seed=0)
    ax = plot_decision_boundary(model, X, y, step=0.5)
    assert ax.get_xlim() != (0.0, 1.0) and len(ax.collections) >= 2
    fig, own = plt.subplots()
    assert plot_decision_boundary(model, X, y, ax=own, step=0.5) is own
    plt.close("all")
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"micrograd-plus\[viz\]"):
        plot_decision_boundary(model, X, y)
