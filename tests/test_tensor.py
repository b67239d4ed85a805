"""micrograd_plus.tensor: every op against finite differences (float64) and against PyTorch,
broadcasting, the backward engine (reuse, accumulation, depth, memory), dtypes and errors."""

import gc
import weakref

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import micrograd_plus.autograd as autograd
import micrograd_plus.tensor as T
import micrograd_plus.testing as testing
from micrograd_plus.gradcheck import check_gradient
from micrograd_plus.autograd import Function, is_grad_enabled, no_grad, unbroadcast
from micrograd_plus.tensor import Tensor
from micrograd_plus.testing import TENSOR_OPS

CASES = {case.name: case for case in TENSOR_OPS}


# ---------------------------------------------------------------- the op table
@pytest.mark.parametrize("name", CASES)
def test_op_forward_and_gradient_vs_numerical(name):
    assert testing.check_op(CASES[name], check_gradient) < 1e-5


@pytest.mark.torch
@pytest.mark.parametrize("name", CASES)
def test_op_forward_and_gradient_vs_torch(name):
    case = CASES[name]
    arrays = case.arrays(seed=1)
    ours = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, out_t = case.fn(*ours), (case.torch_fn or case.fn)(*theirs)
    assert out.shape == tuple(out_t.shape)
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = np.random.default_rng(2).standard_normal(out.shape)
    out.backward(upstream)
    out_t.backward(torch.tensor(upstream))
    for t, tt in zip(ours, theirs):
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_op_stays_float32(name):
    case = CASES[name]
    inputs = case.inputs(dtype=np.float32)
    out = case.fn(*inputs)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert all(t.grad.dtype == np.float32 and t.grad.shape == t.shape for t in inputs)


def test_op_table_covers_every_function():
    functions = {
        cls for cls in vars(T).values() if isinstance(cls, type) and issubclass(cls, Function) and cls is not Function
    }
    used = set()
    for case in TENSOR_OPS:
        out = case.fn(*case.inputs())
        stack = [out]
        while stack:
            node = stack.pop()
            if node._ctx is not None:
                used.add(node._ctx.fn)
                stack.extend(p for p in node._ctx.parents if p is not None)
    assert functions <= used, f"ops missing from TENSOR_OPS: {functions - used}"


# ---------------------------------------------------------------- broadcasting, via hypothesis
@pytest.mark.torch
@settings(max_examples=40, deadline=None)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    op=st.sampled_from(["add", "sub", "mul", "div"]),
)
def test_broadcasting_gradients_vs_torch(shapes, op):
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(0.5, 2.0, s) for s in shapes.input_shapes)
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[
        op
    ]
    x, y = Tensor(a, requires_grad=True, dtype=np.float64), Tensor(b, requires_grad=True, dtype=np.float64)
    xt, yt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, out_t = fn(x, y), fn(xt, yt)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    out_t.backward(torch.tensor(upstream))
    assert x.grad.shape == a.shape and y.grad.shape == b.shape
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y.grad, yt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.torch
@settings(max_examples=40, deadline=None)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
    data=st.data(),
    keepdims=st.booleans(),
    op=st.sampled_from(["sum", "mean", "max"]),
)
def test_reductions_axis_keepdims_vs_torch(shape, data, keepdims, op):
    axes = data.draw(
        st.lists(
            st.integers(-len(shape), len(shape) - 1),
            min_size=1,
            max_size=len(shape),
            unique_by=lambda i: i % len(shape),
        )
    )
    axis = axes[0] if len(axes) == 1 else tuple(axes)
    a = np.random.default_rng(0).permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
    x = Tensor(a, requires_grad=True, dtype=np.float64)
    xt = torch.tensor(a, requires_grad=True)
    out = getattr(x, op)(axis=axis, keepdims=keepdims)
    out_t = torch.amax(xt, dim=axis, keepdim=keepdims) if op == "max" else getattr(xt, op)(dim=axis, keepdim=keepdims)
    np.testing.assert_allclose(out.data, out_t.detach().numpy())
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(upstream)
    out_t.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_max_splits_ties_evenly_like_torch_amax(axis):
    a = np.array([[1.0, 5.0, 5.0], [2.0, 2.0, 2.0]])
    x, xt = Tensor(a, requires_grad=True, dtype=np.float64), torch.tensor(a, requires_grad=True)
    x.max(axis=axis).sum().backward()
    (xt.amax() if axis is None else torch.amax(xt, dim=axis)).sum().backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy())


@pytest.mark.parametrize(
    "shape, target",
    [((3, 4), (3, 1)), ((3, 4), (1, 4)), ((5, 3), (3,)), ((3, 4), ()), ((2, 3, 4), (3, 1)), ((2, 3), (2, 3))],
)
def test_unbroadcast_sums_over_broadcast_axes(shape, target):
    g = np.random.default_rng(0).standard_normal(shape)
    got = unbroadcast(g, target)
    assert got.shape == target and isinstance(got, np.ndarray)
    np.testing.assert_allclose(got.sum(), g.sum())
    expected = torch.tensor(g).sum_to_size(target) if target else torch.tensor(g).sum()
    np.testing.assert_allclose(got, expected.numpy())


def test_unbroadcast_rejects_incompatible_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2,\)"):
        unbroadcast(np.ones((3, 4)), (2,))
    with pytest.raises(ValueError):
        unbroadcast(np.ones(3), (2, 3))


def test_broadcast_reduction_only_when_shapes_differ(monkeypatch):
    calls = []
    monkeypatch.setattr(autograd, "unbroadcast", lambda g, s: calls.append(s) or unbroadcast(g, s))
    a, b = Tensor(np.ones((3, 4)), requires_grad=True), Tensor(np.ones((3, 4)), requires_grad=True)
    (a * b + a).sum().backward()
    assert calls == []
    c = Tensor(np.ones(4), requires_grad=True)
    (a + c).sum().backward()
    assert calls == [(4,)]


# ---------------------------------------------------------------- the backward engine
def test_seed_example():
    a, b = Tensor([2.0], requires_grad=True), Tensor([3.0], requires_grad=True)
    c = a * b + a
    c.sum().backward()
    assert a.grad.tolist() == [4.0] and b.grad.tolist() == [2.0]


def test_reused_non_leaf_nodes():
    x = Tensor([1.0, -2.0], requires_grad=True, dtype=np.float64)
    y = x * 3
    z = y * y + y  # y is used three times
    w = (z + z).sum()  # z twice
    w.backward()
    np.testing.assert_allclose(x.grad, 2 * (18 * x.data + 3))
    xt = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    yt = xt * 3
    zt = yt * yt + yt
    (zt + zt).sum().backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy())


def test_topological_order_lists_each_node_once_parents_first():
    x = Tensor([1.0], requires_grad=True)
    y = x * 2
    z = y + y
    w = z * x
    order = T.topological_order(w)
    assert len(order) == 4 and len({id(n) for n in order}) == 4
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        if node._ctx is not None:
            assert all(position[id(p)] < position[id(node)] for p in node._ctx.parents if p is not None)


def test_backward_twice_accumulates_like_torch():
    x = Tensor([1.0, 2.0], requires_grad=True)
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(2):
        (x * x).sum().backward()
        (xt * xt).sum().backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy())
    x.zero_grad()
    assert x.grad is None


def test_retain_graph_allows_a_second_backward():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_of_a_leaf_and_of_an_explicit_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    g = np.array([3.0, 4.0], dtype=np.float32)
    x.backward(g)
    g[0] = 100.0  # the engine keeps its own copy
    np.testing.assert_allclose(x.grad, [3.0, 4.0])
    y = Tensor([1.0, 2.0], requires_grad=True)
    (y * 2).backward(Tensor([1.0, 1.0]))
    np.testing.assert_allclose(y.grad, [2.0, 2.0])


@pytest.mark.slow
def test_million_node_chain():
    x = Tensor([0.0], requires_grad=True)
    out = x
    for _ in range(1_000_000):
        out = out + 1.0
    out.backward()
    assert x.grad.tolist() == [1.0] and out.item() == 1_000_000.0


def test_deep_chain_without_recursion():
    import sys

    x = Tensor([0.0], requires_grad=True)
    out = x
    for _ in range(5 * sys.getrecursionlimit()):
        out = out * 1.0
    out.backward()
    assert x.grad.tolist() == [1.0]


def test_leaf_gradients_are_never_shared():
    p, q = Tensor(np.ones((2, 2)), requires_grad=True), Tensor(np.ones((2, 2)), requires_grad=True)
    (p + q).sum().backward()  # Add returns one array for both inputs
    assert p.grad is not q.grad and p.grad.flags.writeable and q.grad.flags.writeable
    p.grad *= 0.5
    np.testing.assert_allclose(q.grad, 1.0)
    r = Tensor(np.ones(3), requires_grad=True)
    s = Tensor(np.ones(3), requires_grad=True)
    (r.sum() + s.sum()).backward()  # broadcast views
    assert r.grad.flags.writeable and not np.shares_memory(r.grad, s.grad)
    r.grad += 1
    np.testing.assert_allclose(s.grad, 1.0)


def test_fresh_leaf_gradient_is_kept_without_copy(monkeypatch):
    x = Tensor(np.ones((4, 3)))
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    produced = []
    original = T.MatMul.backward
    monkeypatch.setattr(
        T.MatMul, "backward", staticmethod(lambda ctx, g: produced.append(original(ctx, g)) or produced[-1])
    )
    (x @ w).sum().backward()
    assert produced[0][0] is None  # the data needs no gradient: not computed
    assert w.grad is produced[0][1]  # stored by reference
    w2 = Tensor(np.ones((3, 2)), requires_grad=True)
    (x @ w2 + x @ w2).sum().backward()  # two contributions: summed into an owned buffer
    np.testing.assert_allclose(w2.grad, 8.0)


def test_graph_is_released_after_backward():
    x = Tensor(np.ones((100, 100)), requires_grad=True)
    y = x * 2
    z = y.exp()
    loss = z.sum()
    ref = weakref.ref(y)
    del y, z
    assert ref() is not None  # held by the graph
    loss.backward()
    assert ref() is None  # freed as soon as backward ran
    assert loss.grad_fn is None and not loss.is_leaf


def test_memory_stays_flat_over_steps():
    w = Tensor(np.ones((20, 5)), requires_grad=True)
    x = Tensor(np.ones((8, 20)))

    def live_tensors():
        gc.collect()
        return sum(type(o) is Tensor for o in gc.get_objects())

    counts = []
    for _ in range(5):
        loss = ((x @ w).relu() ** 2).mean()
        loss.backward()
        w.zero_grad()
        counts.append(live_tensors())
    assert len(set(counts[1:])) == 1


def test_no_grad_builds_no_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2).exp().sum()
    assert is_grad_enabled()
    assert not y.requires_grad and y._ctx is None and y.is_leaf

    @no_grad()
    def evaluate(t):
        return t * 3

    assert not evaluate(x).requires_grad and evaluate.__name__ == "evaluate"
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0  # noqa: B018
    assert is_grad_enabled()


def test_no_graph_when_no_input_requires_grad():
    x = Tensor([1.0, 2.0])
    y = (x * 2 + 1).sum()
    assert not y.requires_grad and y._ctx is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_every_tensor_of_a_training_step_is_float32(monkeypatch):
    seen = []
    original = T._make_tensor
    monkeypatch.setattr(autograd, "_make_tensor", lambda data, *a: seen.append(data.dtype) or original(data, *a))
    grads = []
    for cls in (T.Add, T.Sub, T.Mul, T.Div, T.MatMul, T.ReLUFunction, T.Exp, T.Log, T.Sum, T.Mean, T.Max, T.GetItem):
        backward = cls.backward
        monkeypatch.setattr(
            cls, "backward", staticmethod(lambda ctx, g, _b=backward: (grads.append(g.dtype), _b(ctx, g))[1])
        )
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((16, 20)))
    y = rng.integers(0, 5, 16)
    w1, b1 = Tensor(rng.standard_normal((20, 8)) * 0.1, requires_grad=True), Tensor(np.zeros(8), requires_grad=True)
    w2, b2 = Tensor(rng.standard_normal((8, 5)) * 0.1, requires_grad=True), Tensor(np.zeros(5), requires_grad=True)
    logits = (x @ w1 + b1).relu() @ w2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    loss = -log_probs[np.arange(16), y].mean() + 1e-3 * (w1 * w1).sum() / 2.0
    loss.backward()
    assert seen and set(seen) == {np.dtype(np.float32)}
    assert grads and set(grads) == {np.dtype(np.float32)}
    assert all(p.grad.dtype == np.float32 for p in (w1, b1, w2, b2))


# ---------------------------------------------------------------- custom Functions
class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.note = "any attribute"
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        assert ctx.note == "any attribute" and ctx.needs_input_grad == (True,)
        return 2 * x * grad


def test_custom_function_like_torch():
    x = Tensor([1.0, 3.0], requires_grad=True, dtype=np.float64)
    y = Square.apply(x)
    assert y.grad_fn is Square and isinstance(y._ctx, T.Context)
    assert check_gradient(Square.apply, [x]) < 1e-7


def test_function_may_return_none_for_an_input():
    class FirstOnly(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, grad):
            return grad, None

    a, b = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    FirstOnly.apply(a, b).backward()
    assert a.grad.tolist() == [1.0] and b.grad is None


def test_function_without_backward_says_so():
    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x

    y = NoBackward.apply(Tensor([1.0], requires_grad=True))
    with pytest.raises(NotImplementedError, match="backward"):
        y.backward()
    with pytest.raises(NotImplementedError, match="forward"):
        Function.apply(Tensor([1.0]))


# ---------------------------------------------------------------- construction, dtypes, API
def test_construction_and_dtypes():
    # like torch.tensor: integers and bools keep their type, floating point data is float32 by default
    assert Tensor(1).dtype == np.int64 and Tensor([1, 2]).dtype == np.int64 and Tensor(1.0).dtype == np.float32
    assert Tensor(np.array([1, 2], dtype=np.int32)).dtype == np.int32 and Tensor(np.uint8(3)).dtype == np.uint8
    assert Tensor(np.ones(2, dtype=np.float64)).dtype == np.float32
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64 and Tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert Tensor([True, False]).dtype == np.bool_
    with pytest.raises(TypeError, match="only floating point tensors can require gradients, got dtype int64"):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="got dtype bool"):
        Tensor([True], requires_grad=True)
    a = np.ones(3, dtype=np.float32)
    assert Tensor(a).data is a  # no copy when the dtype already matches
    t = Tensor([1.0, 2.0], requires_grad=True)
    assert Tensor(t).data is t.data and not Tensor(t).requires_grad
    assert Tensor([1, 2], dtype=np.int64).dtype == np.int64


def test_integer_tensors_as_targets_and_indices():
    from micrograd_plus.losses import CrossEntropyLoss, mse_loss

    logits = Tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], requires_grad=True)
    labels = Tensor(np.array([0, 2]))  # the documents' MNIST loop: y_batch = Tensor(y_train[batch_idx])
    loss = CrossEntropyLoss()(logits, labels)
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits.data, dtype=torch.float64), torch.tensor([0, 2]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert mse_loss(Tensor([1.0, 2.0]), Tensor([1, 4])).dtype == np.float32
    picked = logits[Tensor([1, 0]), labels]  # integer tensors index like integer arrays
    picked.sum().backward()
    assert np.array_equal(picked.data, [logits.data[1, 0], logits.data[0, 2]])
    assert np.array_equal(logits.grad, [[0, 0, 1], [1, 0, 0]])
    assert np.array_equal(Tensor([1.0, 2.0, 3.0])[Tensor([True, False, True])].data, [1.0, 3.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda b: b * 3 + b * b,  # a 0-d leaf used twice
        lambda b: (b * 2) * (b * 2) + b,  # ... three times, with a 0-d intermediate
        lambda b: (lambda c: c * c + c)(b.exp()),  # a 0-d non-leaf used three times
        lambda b: (b * Tensor([1.0, 2.0], dtype=np.float64)).sum() + b,  # 0-d broadcast against a vector, reused
    ],
)
def test_zero_dimensional_tensor_used_several_times(make):
    ours = Tensor(np.float64(0.7), dtype=np.float64, requires_grad=True)
    make(ours).backward()
    theirs = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    make_torch = make(_TorchLike(theirs))
    make_torch.t.backward()
    assert isinstance(ours.grad, np.ndarray) and ours.grad.shape == ()
    assert ours.grad == pytest.approx(theirs.grad.item(), rel=1e-12)
    ours.zero_grad()
    make(ours).backward()
    make(ours).backward()  # accumulating into a 0-d gradient
    assert ours.grad == pytest.approx(2 * theirs.grad.item(), rel=1e-12)


class _TorchLike:
    """A torch tensor behind the few operators the 0-d programs above use (Tensor([...]) constants included)."""

    def __init__(self, t):
        self.t = t

    def _other(self, o):
        if isinstance(o, _TorchLike):
            return o.t
        if isinstance(o, Tensor):
            return torch.tensor(o.data, dtype=torch.float64)
        return o

    def __add__(self, o):
        return _TorchLike(self.t + self._other(o))

    __radd__ = __add__

    def __mul__(self, o):
        return _TorchLike(self.t * self._other(o))

    __rmul__ = __mul__

    def exp(self):
        return _TorchLike(self.t.exp())

    def sum(self):
        return _TorchLike(self.t.sum())


def test_python_and_numpy_scalars_do_not_upcast():
    x = Tensor([1.0, 2.0])
    for other in (2, 2.5, np.float64(2.5), np.array([2.0, 3.0]), [1.0, 2.0]):
        for result in (x + other, other + x, x * other, other * x, x - other, other - x, x / other, other / x, x**2.0):
            assert isinstance(result, Tensor) and result.dtype == np.float32
    assert (2.0**x).dtype == np.float32 and (Tensor([1.0], dtype=np.float64) * 2.0).dtype == np.float64
    assert (np.ones((2, 2)) @ Tensor(np.ones((2, 2)))).shape == (2, 2)


def test_properties_and_conversions():
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert (t.shape, t.ndim, t.size, t.dtype, len(t)) == ((2, 3), 2, 6, np.float32, 2)
    assert t.T.shape == (3, 2) and t.transpose((1, 0)).shape == (3, 2) and t.reshape((3, 2)).shape == (3, 2)
    assert t.numpy() is t.data and np.asarray(t) is t.data and np.asarray(t, dtype=np.float64).dtype == np.float64
    d = t.detach()
    assert d.data is t.data and not d.requires_grad and d.is_leaf
    assert Tensor([[2.5]]).item() == 2.5 and bool(Tensor([1.0])) and not bool(Tensor(0.0))
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1., 2.])"
    assert repr(t[0]) == "Tensor([1., 2., 3.], requires_grad=True)"
    assert repr(Tensor([1.0], dtype=np.float64)) == "Tensor([1.], dtype=float64)"
    assert t.is_leaf and t.grad_fn is None and (t * 2).grad_fn is T.Mul


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_comparisons_give_boolean_tensors_without_gradient_like_torch(op):
    compare = eval(f"lambda x, y: x {op} y")  # noqa: S307 (one operator of the parametrisation)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, (3, 1)).astype(np.float32)
    b = rng.integers(0, 3, (4,)).astype(np.float32)
    x, y = Tensor(a, requires_grad=True), Tensor(b)
    for ours, theirs in [
        (compare(x, y), compare(torch.tensor(a), torch.tensor(b))),  # broadcasting
        (compare(x, 1.0), compare(torch.tensor(a), 1.0)),  # a scalar
        (compare(1, x), compare(1, torch.tensor(a))),  # reflected
        (compare(x, b), compare(torch.tensor(a), torch.tensor(b))),  # an array
        (compare(Tensor(2.0), 2.0), compare(torch.tensor(2.0), 2.0)),
    ]:  # 0-d
        assert isinstance(ours, Tensor) and ours.dtype == bool and not ours.requires_grad and ours.is_leaf
        assert ours.shape == tuple(theirs.shape) and ours.tolist() == theirs.tolist()


def test_tensors_hash_by_identity_as_dict_keys_and_set_members():
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([1.0, 2.0], requires_grad=True)
    state = {a: 1, b: 2}
    assert state[a] == 1 and state[b] == 2 and len({a, b, a}) == 2 and hash(a) != hash(b)
    assert a in [a] and (a == b).tolist() == [True, True]  # `==` compares elements, `in` finds by identity first
    x = Tensor([3.0, -1.0, 5.0], requires_grad=True)
    x[x > 0].sum().backward()  # a boolean tensor indexes like a boolean array
    np.testing.assert_allclose(x.grad, [1, 0, 1])


def test_indexing_with_tensor_and_boolean_indices():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    x[Tensor([1], dtype=np.int64)].sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0, 0], [1, 1, 1]])
    x.zero_grad()
    x[(Tensor([0, 1], dtype=np.int64), Tensor([2, 2], dtype=np.int64))].sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0, 1], [0, 0, 1]])
    x.zero_grad()
    x[x.data > 2].sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0, 0], [1, 1, 1]])


def test_log_of_non_positive_is_nan_or_minus_inf_like_numpy():
    with np.errstate(divide="ignore", invalid="ignore"):
        y = Tensor([0.0, -1.0, 1.0]).log()
    assert y.data[0] == -np.inf and np.isnan(y.data[1]) and y.data[2] == 0.0


def test_pow_gradient_for_the_exponent_and_a_number_base():
    x = Tensor([0.5, 1.5], requires_grad=True, dtype=np.float64)
    assert check_gradient(lambda t: 3.0**t, [x]) < 1e-7
    e = Tensor([2.0, 3.0], requires_grad=True, dtype=np.float64)
    assert check_gradient(lambda b, p: b**p, [x, e]) < 1e-7
    base = Tensor([-2.0], requires_grad=True)  # negative base with a number exponent: finite gradient
    (base**2).backward()
    assert base.grad.tolist() == [-4.0]


# ---------------------------------------------------------------- error messages
@pytest.mark.parametrize(
    "data, name",
    [
        ("abc", "str"),
        (None, "NoneType"),
        ({"a": 1}, "dict"),
        (["a", "b"], "list"),
        (np.array(["x"]), "ndarray"),
        ([1 + 2j], "list"),
        (object(), "object"),
    ],
)
def test_non_numeric_data_is_a_type_error_naming_the_type(data, name):
    with pytest.raises(TypeError, match=f"numeric.*got {name}"):
        Tensor(data)


def test_ragged_data_and_integer_gradients_are_rejected():
    with pytest.raises(ValueError, match="rectangular"):
        Tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(TypeError, match="floating point"):
        Tensor([1, 2], requires_grad=True, dtype=np.int64)


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\).*only"):
        Tensor(np.ones(3)) @ Tensor(np.ones(4))


def test_backward_on_non_scalar_without_gradient_explains_the_fix():
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\).*sum\(\)\.backward\(\)"):
        y.backward()


def test_backward_with_gradient_of_wrong_shape():
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\) but the tensor has shape \(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_without_grad_and_item_of_many_elements():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).backward()
    with no_grad():
        y = Tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()
    with pytest.raises(ValueError, match=r"exactly one element.*\(2,\)"):
        Tensor([1.0, 2.0]).item()


def test_second_backward_through_a_released_graph():
    x = Tensor([1.0], requires_grad=True)
    y = (x * 2).exp()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph"):
        y.backward()


def test_broadcast_mismatch_in_elementwise_ops_names_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        Tensor(np.ones(3)) + Tensor(np.ones(4))
