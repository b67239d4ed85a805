"""micrograd_plus.layers: Module mechanics, every layer against numerical gradients and against PyTorch."""

import gc
import weakref

import numpy as np
import pytest
import torch

from micrograd_plus.gradcheck import GradientCheckError, check_gradient
from micrograd_plus.layers import (
    BatchNorm1d,
    BatchNormFunction,
    Dropout,
    Flatten,
    LayerNorm,
    Linear,
    Module,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    init_weight,
    linear,
    softmax,
)
from micrograd_plus.tensor import Tensor, no_grad

F64 = np.float64


def t64(a, requires_grad=True):
    return Tensor(np.asarray(a, dtype=F64), requires_grad=requires_grad, dtype=F64)


def torch_of(a, requires_grad=True):
    return torch.tensor(np.asarray(a, dtype=F64), requires_grad=requires_grad)


def copy_into_torch(ours, theirs):
    """Copy every parameter and buffer of our module into the same-named one of a torch module."""
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})


# ----------------------------------------------------------------------------------------------- Module mechanics
class Pair(Module):
    def __init__(self):
        super().__init__()
        self.first = Linear(3, 4, rng=0)
        self.second = Linear(4, 2, rng=1)
        self.scale = Parameter(np.ones(2))
        self.register_buffer("steps", np.zeros(1))

    def forward(self, x):
        return self.second(self.first(x).relu()) * self.scale


def test_parameter_is_a_tensor_that_requires_grad():
    p = Parameter([1.0, 2.0])
    assert isinstance(p, Tensor) and p.requires_grad and p.dtype == np.float32
    assert repr(p).startswith("Parameter containing:\n")
    assert type(p * 2) is Tensor, "results of operations on a Parameter are plain Tensors"
    assert not Parameter([1.0], requires_grad=False).requires_grad


def test_named_parameters_order_buffers_and_children():
    m = Pair()
    assert [n for n, _ in m.named_parameters()] == [
        "scale",
        "first.weight",
        "first.bias",
        "second.weight",
        "second.bias",
    ]
    assert [n for n, _ in m.named_buffers()] == ["steps"]
    assert [id(b) for b in m.buffers()] == [id(m.steps)]
    assert list(m.children()) == [m.first, m.second]
    assert [n for n, _ in m.named_modules()] == ["", "first", "second"]
    assert list(m.state_dict()) == ["scale", "steps", "first.weight", "first.bias", "second.weight", "second.bias"]


def test_shared_parameters_and_modules_are_listed_once():
    shared = Linear(3, 3, rng=0)
    model = Sequential(shared, ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(model.modules())) == 3
    tied = Sequential(Linear(2, 2, rng=0), Linear(2, 2, rng=1))
    tied[1].weight = tied[0].weight
    assert [n for n, _ in tied.named_parameters()] == ["0.weight", "0.bias", "1.bias"]


def test_registration_rules():
    m = Pair()
    with pytest.raises(TypeError, match="parameter 'scale'"):
        m.scale = np.ones(2)
    m.scale = None
    assert "scale" not in dict(m.named_parameters())
    m.first = "not a module any more"
    assert "first" not in dict(m.named_modules())
    m.steps = np.ones(1)
    assert dict(m.named_buffers())["steps"][0] == 1.0
    del m.second
    assert [n for n, _ in m.named_modules()] == [""]
    with pytest.raises(TypeError, match="add_module"):
        m.add_module("x", 3)
    with pytest.raises(TypeError, match="register_parameter"):
        m.register_parameter("w", np.ones(2))
    m.register_parameter("w", Parameter(np.ones(2)))
    assert "w" in dict(m.named_parameters())


def test_subclass_that_forgets_super_init_still_registers():
    class Forgetful(Module):
        def __init__(self):
            self.w = Parameter(np.ones(2))

    m = Forgetful()
    assert [n for n, _ in m.named_parameters()] == ["w"] and m.training


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="Module must implement forward"):
        Module()(1)


def test_train_eval_propagate_and_return_self():
    m = Sequential(Linear(2, 2), Sequential(Dropout(0.5), BatchNorm1d(2)))
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    assert m.train() is m and all(mod.training for mod in m.modules())
    m[1].eval()
    assert m.training and not m[1][0].training and not m[1][1].training


def test_zero_grad_sets_none():
    m = Pair()
    m(Tensor(np.ones((2, 3)))).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_to_double_and_float_convert_parameters_buffers_and_grads():
    m = Sequential(Linear(2, 3), BatchNorm1d(3))
    m[0].weight.grad = np.ones((3, 2), dtype=np.float32)
    m.double()
    assert all(p.dtype == F64 for p in m.parameters()) and m[0].weight.grad.dtype == F64
    assert m[1].running_mean.dtype == F64 and m[1].num_batches_tracked.dtype == np.int64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters()) and m[1].running_var.dtype == np.float32


def test_state_dict_is_a_copy_and_round_trips():
    a, b = Pair(), Pair()
    for p in b.parameters():
        p.data[...] = 7.0
    state = a.state_dict()
    state_before = {k: v.copy() for k, v in state.items()}
    b.load_state_dict(state)
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(pa.data, pb.data)
    a.first.weight.data += 1.0
    assert np.array_equal(state["first.weight"], state_before["first.weight"]), "state_dict must copy"


def test_load_state_dict_errors_name_the_problem_and_change_nothing():
    m = Pair()
    good = m.state_dict()
    bad = dict(good, **{"second.weight": np.zeros((5, 4))})
    bad["first.weight"] = np.full((4, 3), 9.0)
    with pytest.raises(ValueError, match=r"size mismatch for second\.weight.*\(5, 4\).*\(2, 4\)"):
        m.load_state_dict(bad)
    assert not np.any(m.first.weight.data == 9.0), "a failed load must not change any parameter"
    with pytest.raises(KeyError, match="missing keys \\['scale'\\]"):
        m.load_state_dict({k: v for k, v in good.items() if k != "scale"})
    with pytest.raises(KeyError, match="unexpected keys \\['extra'\\]"):
        m.load_state_dict(dict(good, extra=np.zeros(1)))
    result = m.load_state_dict({"scale": Tensor([3.0, 4.0]), "extra": 1}, strict=False)
    assert result.unexpected_keys == ["extra"] and "first.weight" in result.missing_keys
    assert np.array_equal(m.scale.data, [3.0, 4.0])


def test_repr_like_pytorch():
    model = Sequential(Linear(784, 256), ReLU(), Sequential(Dropout(0.1), BatchNorm1d(4)), Softmax(dim=1))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=256, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.1)\n"
        "    (1): BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  )\n"
        "  (3): Softmax(dim=1)\n"
        ")"
    )
    assert repr(LayerNorm(3)) == "LayerNorm((3,), eps=1e-05, elementwise_affine=True)"
    assert repr(Flatten()) == "Flatten(start_dim=1)"

    class WithExtra(Module):
        def __init__(self):
            super().__init__()
            self.inner = ReLU()

        def extra_repr(self):
            return "k=1"

    assert repr(WithExtra()) == "WithExtra(\n  k=1\n  (inner): ReLU()\n)"


@pytest.mark.torch
def test_state_dict_keys_and_values_load_into_pytorch():
    ours = Sequential(Linear(5, 4, rng=0), BatchNorm1d(4), ReLU(), Linear(4, 3, bias=False, rng=1))
    theirs = torch.nn.Sequential(
        torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 3, bias=False)
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------- Linear
def test_linear_fused_forward_and_gradients():
    rng = np.random.default_rng(0)
    lin = Linear(5, 3, rng=1).double()
    x = t64(rng.normal(size=(4, 5)))
    out = lin(x)
    assert out.grad_fn.__name__ == "LinearFunction", "Linear must be one fused graph node"
    np.testing.assert_allclose(out.data, x.data @ lin.weight.data.T + lin.bias.data)
    check_gradient(lambda *_: lin(x), [x, lin.weight, lin.bias], name="Linear")
    x3 = t64(rng.normal(size=(2, 3, 5)))
    check_gradient(lambda *_: lin(x3), [x3, lin.weight, lin.bias], name="Linear 3-D")
    nobias = Linear(5, 3, bias=False, rng=1).double()
    check_gradient(lambda *_: nobias(x), [x, nobias.weight], name="Linear(bias=False)")


def test_linear_skips_input_gradient_for_data():
    lin = Linear(4, 2, rng=0)
    x = Tensor(np.ones((3, 4)))
    lin(x).sum().backward()
    assert x.grad is None and lin.weight.grad.shape == (2, 4) and np.allclose(lin.bias.grad, 3.0)
    frozen = Linear(4, 2, rng=0)
    frozen.weight.requires_grad = False
    xg = Tensor(np.ones((3, 4)), requires_grad=True)
    frozen(xg).sum().backward()
    assert frozen.weight.grad is None and xg.grad.shape == (3, 4)
    with no_grad():
        assert not lin(xg).requires_grad


def test_linear_errors():
    for bad in (0, -3, 2.5, "4"):
        with pytest.raises(ValueError, match="in_features must be a positive integer"):
            Linear(bad, 3)
    with pytest.raises(ValueError, match="out_features"):
        Linear(3, 0)
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(3, 5\).*in_features=5"):
        Linear(5, 3)(Tensor(np.ones((2, 4))))
    with pytest.raises(ValueError, match="init must be 'he' or 'xavier'"):
        Linear(3, 3, init="glorot")
    with pytest.raises(ValueError, match="in_features"):
        linear(Tensor(2.0), Tensor(np.ones((3, 1))))


def test_linear_accepts_arrays_and_generators():
    rng = np.random.default_rng(5)
    a = Linear(3, 2, rng=rng)
    b = Linear(3, 2, rng=np.random.default_rng(5))
    assert np.array_equal(a.weight.data, b.weight.data)
    assert Linear(3, 2, rng=0)(np.ones((1, 3))).shape == (1, 2)
    assert Linear(3, 2, dtype=F64).weight.dtype == F64


@pytest.mark.parametrize("init, variance", [("he", 2 / 1000), ("xavier", 2 / 1800)])
def test_initialisation_statistics(init, variance):
    w = Linear(1000, 800, init=init, rng=0).weight.data
    assert w.shape == (800, 1000) and w.dtype == np.float32
    assert abs(w.mean()) < 3e-4
    assert abs(w.var() / variance - 1) < 0.01
    if init == "xavier":
        assert np.abs(w).max() <= np.sqrt(6 / 1800) + 1e-7
    else:  # normal: about 4.6% of draws lie beyond 2 standard deviations
        assert abs(np.mean(np.abs(w) > 2 * np.sqrt(variance)) - 0.0455) < 0.002
    assert np.array_equal(init_weight((3, 3), 3, 3, init, rng=1), init_weight((3, 3), 3, 3, init, rng=1))


def test_he_init_keeps_relu_activations_stable_through_depth():
    x = Tensor(np.random.default_rng(0).normal(size=(512, 256)))
    layers = Sequential(*[m for _ in range(10) for m in (Linear(256, 256, rng=None), ReLU())])
    with no_grad():
        second_moment = float((layers(x).data ** 2).mean())
    assert 0.3 < second_moment < 3.0


@pytest.mark.torch
def test_linear_matches_pytorch():
    rng = np.random.default_rng(1)
    ours = Linear(6, 4, rng=0).double()
    ours.bias.data[...] = rng.normal(size=4)
    theirs = torch.nn.Linear(6, 4).double()
    copy_into_torch(ours, theirs)
    xa = rng.normal(size=(5, 6))
    g = rng.normal(size=(5, 4))
    x, tx = t64(xa), torch_of(xa)
    ours(x).backward(g)
    theirs(tx).backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-12)


# ----------------------------------------------------------------------------------------------- activations
@pytest.mark.torch
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (ReLU(), torch.nn.ReLU()),
        (Sigmoid(), torch.nn.Sigmoid()),
        (Tanh(), torch.nn.Tanh()),
        (Softmax(), torch.nn.Softmax(dim=-1)),
        (Softmax(dim=0), torch.nn.Softmax(dim=0)),
        (Softmax(dim=1), torch.nn.Softmax(dim=1)),
    ],
    ids=["relu", "sigmoid", "tanh", "softmax-1", "softmax0", "softmax1"],
)
def test_activations_match_pytorch_and_numerical(ours, theirs):
    rng = np.random.default_rng(2)
    xa = rng.normal(size=(3, 4, 5)) * 3
    g = rng.normal(size=xa.shape)
    x, tx = t64(xa), torch_of(xa)
    out = ours(x)
    out.backward(g)
    theirs(tx).backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, theirs(torch_of(xa, False)).numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    check_gradient(lambda *_: ours(x), [x], name=repr(ours))


def test_softmax_is_stable_and_validates_dim():
    s = softmax(Tensor([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]]))
    assert np.all(np.isfinite(s.data))
    np.testing.assert_allclose(s.data, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    assert s.dtype == np.float32
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        softmax(Tensor(np.ones((2, 2))), dim=2)
    assert softmax(np.zeros(4)).shape == (4,)


# ----------------------------------------------------------------------------------------------- Dropout
def test_dropout_statistics_and_scaling():
    p = 0.25
    drop = Dropout(p, rng=0)
    x = Tensor(np.ones((400, 500)), requires_grad=True)
    y = drop(x)
    kept = y.data != 0
    assert abs(1 - kept.mean() - p) < 0.005
    np.testing.assert_allclose(y.data[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(y.data.mean() - 1) < 0.01, "inverted dropout keeps the mean"
    assert abs(y.data.var() - p / (1 - p)) < 0.01, "variance of a scaled Bernoulli"
    y.backward(np.full(y.shape, 2.0, dtype=np.float32))
    np.testing.assert_allclose(x.grad, 2 * y.data)


@pytest.mark.torch
def test_dropout_statistics_match_pytorch():
    torch.manual_seed(0)
    x = np.ones((300, 300), dtype=np.float32)
    theirs = torch.nn.Dropout(0.4)(torch.tensor(x)).numpy()
    ours = Dropout(0.4, rng=0)(Tensor(x)).data
    assert set(np.unique(ours)) == set(np.unique(theirs))
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.01


def test_dropout_modes_validation_and_seeding():
    x = Tensor(np.arange(12.0).reshape(3, 4))
    drop = Dropout(0.5, rng=3)
    drop.eval()
    assert drop(x) is x, "identity in eval mode"
    assert Dropout(0.0)(x) is x
    np.testing.assert_array_equal(Dropout(1.0)(x).data, 0)
    np.testing.assert_array_equal(Dropout(0.5, rng=7)(x).data, Dropout(0.5, rng=7)(x).data)
    first = Dropout(0.5, rng=7)
    assert not np.array_equal(first(Tensor(np.ones(100))).data, first(Tensor(np.ones(100))).data), (
        "a new mask on every call"
    )
    for bad in (-0.01, 1.01, True, "0.5", None):
        with pytest.raises(ValueError, match="between 0 and 1"):
            Dropout(bad)
    assert repr(Dropout(0.3)) == "Dropout(p=0.3)"
    assert Dropout(0.5, rng=0)(np.ones(3)).shape == (3,)


# ----------------------------------------------------------------------------------------------- BatchNorm1d
def _composed_batchnorm(x, weight, bias, eps=1e-5):
    centred = x - x.mean(axis=0, keepdims=True)
    var = (centred * centred).mean(axis=0, keepdims=True)
    return centred / (var + eps) ** 0.5 * weight + bias


def test_batchnorm_fused_backward_is_one_node_and_matches_numerical_and_composition():
    rng = np.random.default_rng(0)
    bn = BatchNorm1d(4, dtype=F64)
    bn.weight.data[...] = rng.normal(size=4)
    bn.bias.data[...] = rng.normal(size=4)
    x = t64(rng.normal(2.0, 3.0, size=(6, 4)))
    out = bn(x)
    assert out.grad_fn is BatchNormFunction
    check_gradient(lambda *_: bn(x), [x, bn.weight, bn.bias], name="BatchNorm1d")
    g = rng.normal(size=(6, 4))
    x.zero_grad(), bn.zero_grad()
    bn(x).backward(g)
    fused = [x.grad, bn.weight.grad, bn.bias.grad]
    x.zero_grad(), bn.zero_grad()
    _composed_batchnorm(x, bn.weight, bn.bias).backward(g)
    for a, b in zip(fused, [x.grad, bn.weight.grad, bn.bias.grad]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    plain = BatchNorm1d(4, affine=False, dtype=F64)
    check_gradient(lambda *_: plain(x), [x], name="BatchNorm1d(affine=False)")


def assert_normalisation_matches_torch(ours, theirs, xa, g):
    """Forward ``xa`` through both layers, backward ``g``: outputs and every gradient agree.

    Returns our input Tensor (its ``grad`` filled in) for further checks.
    """
    x, tx = t64(xa), torch_of(xa)
    out, tout = ours(x), theirs(tx)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    out.backward(g)
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-10)
    return x


@pytest.mark.torch
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batchnorm_matches_pytorch_over_several_batches(momentum):
    rng = np.random.default_rng(1)
    ours = BatchNorm1d(3, momentum=momentum, dtype=F64)
    ours.weight.data[...] = [1.5, -0.5, 2.0]
    ours.bias.data[...] = [0.1, 0.2, -0.3]
    theirs = torch.nn.BatchNorm1d(3, momentum=momentum).double()
    copy_into_torch(ours, theirs)
    for step in range(4):
        xa = rng.normal(step, 1 + step, size=(5 + step, 3))
        g = rng.normal(size=xa.shape)
        ours.zero_grad(), theirs.zero_grad()
        assert_normalisation_matches_torch(ours, theirs, xa, g)
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 4
    ours.eval(), theirs.eval()
    xa = rng.normal(size=(2, 3))
    x, tx = t64(xa), torch_of(xa)
    out, tout = ours(x), theirs(tx)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10)
    out.backward(np.ones((2, 3)))
    tout.backward(torch.ones(2, 3, dtype=torch.float64))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-10)
    before = ours.running_mean.copy()
    ours(x)
    assert np.array_equal(ours.running_mean, before), "eval mode does not update running statistics"
    assert ours(t64(xa[:1])).shape == (1, 3), "a batch of one works in eval mode"


@pytest.mark.torch
def test_batchnorm_without_affine_or_running_stats_matches_pytorch():
    rng = np.random.default_rng(2)
    xa = rng.normal(size=(4, 2))
    for kwargs in ({"affine": False}, {"track_running_stats": False}):
        ours, theirs = BatchNorm1d(2, dtype=F64, **kwargs), torch.nn.BatchNorm1d(2, **kwargs).double()
        assert ("running_mean" in ours.state_dict()) == ("running_mean" in theirs.state_dict())
        for mode in ("train", "eval"):
            getattr(ours, mode)(), getattr(theirs, mode)()
            np.testing.assert_allclose(ours(t64(xa)).data, theirs(torch_of(xa)).detach().numpy(), rtol=1e-10)


def test_batchnorm_float32_and_known_running_statistics():
    bn = BatchNorm1d(2)
    b1 = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    out = bn(Tensor(b1))
    assert out.dtype == np.float32 and bn.running_mean.dtype == np.float32
    np.testing.assert_allclose(bn.running_mean, [0.2, 0.4], rtol=1e-6)
    np.testing.assert_allclose(bn.running_var, [0.9 + 0.1 * 2, 0.9 + 0.1 * 8], rtol=1e-6)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 3\), got \(4, 2\)"):
        BatchNorm1d(3)(Tensor(np.ones((4, 2))))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(3)(Tensor(np.ones((1, 3))))
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm1d(0)
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1d(2, momentum=1.5)


# ----------------------------------------------------------------------------------------------- LayerNorm
@pytest.mark.torch
@pytest.mark.parametrize("shape, normalized", [((4, 5), 5), ((3, 2, 4), (2, 4)), ((6,), 6)])
def test_layernorm_matches_pytorch_and_numerical(shape, normalized):
    rng = np.random.default_rng(3)
    ours = LayerNorm(normalized, dtype=F64)
    theirs = torch.nn.LayerNorm(normalized).double()
    ours.weight.data[...] = rng.normal(size=ours.weight.shape)
    ours.bias.data[...] = rng.normal(size=ours.bias.shape)
    copy_into_torch(ours, theirs)
    xa = rng.normal(1.0, 2.0, size=shape)
    g = rng.normal(size=shape)
    x = assert_normalisation_matches_torch(ours, theirs, xa, g)
    check_gradient(lambda *_: ours(x), [x, ours.weight, ours.bias], name="LayerNorm")


def test_layernorm_without_affine_and_errors():
    ln = LayerNorm(3, elementwise_affine=False)
    assert list(ln.parameters()) == []
    out = ln(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(out.data.mean(), 0, atol=1e-6)
    assert ln.eval()(Tensor([[1.0, 2.0, 3.0]])).shape == (1, 3), "same in eval mode, batch of one fine"
    with pytest.raises(ValueError, match=r"trailing shape is \(3,\), got \(2, 4\)"):
        ln(Tensor(np.ones((2, 4))))
    with pytest.raises(ValueError, match="trailing shape"):
        LayerNorm((2, 3))(Tensor(np.ones(3)))


# ----------------------------------------------------------------------------------------------- Sequential
def test_sequential_container_behaviour():
    layers = [Linear(2, 3, rng=0), ReLU(), Linear(3, 1, rng=1)]
    model = Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2]
    tail = model[1:]
    assert isinstance(tail, Sequential) and list(tail) == layers[1:]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 layers"):
        model[3]
    with pytest.raises(TypeError, match="argument 1 is a ufunc, not a Module"):
        Sequential(Linear(2, 2), np.tanh)
    model.append(Sigmoid())
    assert len(model) == 4 and isinstance(model[3], Sigmoid)
    out = model(Tensor(np.ones((5, 2))))
    assert out.shape == (5, 1) and np.all((out.data > 0) & (out.data < 1))
    assert Sequential()(3) == 3


def test_flatten():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    out = Flatten()(x)
    assert out.shape == (2, 12)
    out.sum().backward()
    assert x.grad.shape == (2, 3, 4)
    assert Flatten(start_dim=2)(np.zeros((2, 3, 4, 5))).shape == (2, 3, 20)


@pytest.mark.torch
def test_mlp_matches_pytorch_forward_and_all_gradients():
    rng = np.random.default_rng(4)
    ours = Sequential(
        Linear(8, 16, rng=0),
        BatchNorm1d(16),
        ReLU(),
        Dropout(0.5),
        Linear(16, 10, init="xavier", rng=1),
        Tanh(),
        Linear(10, 3, rng=2),
        Softmax(),
    ).double()
    theirs = torch.nn.Sequential(
        torch.nn.Linear(8, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(16, 10),
        torch.nn.Tanh(),
        torch.nn.Linear(10, 3),
        torch.nn.Softmax(dim=-1),
    ).double()
    copy_into_torch(ours, theirs)
    ours.eval(), theirs.eval()  # dropout off; batch norm with running statistics
    ours[1].train(), theirs[1].train()  # ...except batch norm, which uses the batch
    xa, g = rng.normal(size=(7, 8)), rng.normal(size=(7, 3))
    x, tx = t64(xa), torch_of(xa)
    out, tout = ours(x), theirs(tx)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-13)
    out.backward(g)
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-7, atol=1e-12)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, theirs_params[name].grad.numpy(), rtol=1e-7, atol=1e-12, err_msg=name)


def test_gradcheck_catches_a_wrong_backward(monkeypatch):
    """The gradient checks above can fail: a Linear whose backward doubles the weight gradient is caught."""
    from micrograd_plus.layers import LinearFunction

    original = LinearFunction.backward

    def doubled(ctx, grad):
        grad_x, grad_w, grad_b = original(ctx, grad)
        return grad_x, 2 * grad_w, grad_b

    monkeypatch.setattr(LinearFunction, "backward", staticmethod(doubled))
    lin = Linear(3, 2, rng=0).double()
    x = t64(np.ones((2, 3)))
    with pytest.raises(GradientCheckError, match="input 1"):
        check_gradient(lambda *_: lin(x), [x, lin.weight, lin.bias])


# ----------------------------------------------------------------------------------------------- no leaks
def _live_tensors():
    gc.collect()
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), Tensor))


def test_a_training_step_leaks_no_tensor():
    from micrograd_plus.functional import cross_entropy

    rng = np.random.default_rng(0)
    model = Sequential(
        Linear(20, 32, rng=0),
        BatchNorm1d(32),
        ReLU(),
        Dropout(0.2, rng=0),
        LayerNorm(32),
        Linear(32, 5, rng=1),
        Tanh(),
        Linear(5, 5, rng=2),
    )
    xs, ys = rng.normal(size=(16, 20)).astype(np.float32), rng.integers(0, 5, size=16)

    def step():
        out = model(Tensor(xs))
        loss = cross_entropy(out, ys)
        loss.backward()
        with no_grad():
            for p in model.parameters():
                p.data -= 0.1 * p.grad
        model.zero_grad()
        return weakref.ref(out), weakref.ref(loss)

    step()
    before = _live_tensors()
    refs = [r for _ in range(3) for r in step()]
    assert all(r() is None for r in refs), "the step's outputs must be freed without the cycle collector"
    assert _live_tensors() == before, "a training step left Tensors alive"
