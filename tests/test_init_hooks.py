"""micrograd_plus.init against torch.nn.init, forward hooks against torch.nn.Module's, and the Recorder.

The initialisers draw from NumPy generators, so they cannot match PyTorch number for number; they are
compared in distribution: the variance of the samples against the formula (within five standard errors of
a sample variance), and the whole distribution against PyTorch's samples (two-sample Kolmogorov-Smirnov).
"""

import gc
import math
import tracemalloc
import weakref

import numpy as np
import pytest
import torch

from micrograd_plus import init
from micrograd_plus.hooks import Recorder
from micrograd_plus.layers import Linear, Module, Parameter, ReLU, Sequential, Tanh
from micrograd_plus.losses import CrossEntropyLoss
from micrograd_plus.optimizers import SGD
from micrograd_plus.tensor import Tensor, no_grad

pytestmark = pytest.mark.torch


def ks_statistic(a, b):
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    grid = np.concatenate([a, b])
    return float(
        np.max(
            np.abs(np.searchsorted(a, grid, side="right") / a.size - np.searchsorted(b, grid, side="right") / b.size)
        )
    )


def ks_critical(n, m, alpha=1e-4):
    """The statistic above which two samples of sizes n and m differ at level alpha."""
    return math.sqrt(-0.5 * math.log(alpha / 2)) * math.sqrt((n + m) / (n * m))


def torch_sample(fn, shape, seed, **kwargs):
    torch.manual_seed(seed)
    return fn(torch.empty(shape, dtype=torch.float64), **kwargs).numpy()


def assert_variance(w, expected, kind, what):
    w = np.asarray(w, dtype=np.float64).ravel()
    se = expected * math.sqrt((2.0 if kind == "normal" else 0.8) / w.size)
    assert abs(w.var() - expected) < 5 * se, (
        f"{what}: variance {w.var():.4e}, expected {expected:.4e} (5 SE = {5 * se:.1e})"
    )


# ----------------------------------------------------------------------------------------------- gains and fans
@pytest.mark.parametrize(
    "name, param",
    [
        ("linear", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("selu", None),
        ("conv2d", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", 0),
    ],
)
def test_calculate_gain_matches_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param), rel=1e-12)


def test_calculate_gain_rejects_unknown_names_and_bad_slopes():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'gelu'"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "0.1")


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (8, 4, 3, 3), (2, 6, 5), (1, 1)])
def test_fans_match_torch(shape):
    theirs = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.calculate_fan_in_and_fan_out(np.zeros(shape)) == theirs
    assert init._calculate_fan_in_and_fan_out(Parameter(np.zeros(shape))) == theirs


def test_fans_need_two_dimensions():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.calculate_fan_in_and_fan_out(np.zeros(4))


# ----------------------------------------------------------------------------------------------- Xavier and He
XAVIER: list[tuple[str, str, dict]] = [
    ("xavier_uniform_", "uniform", {}),
    ("xavier_uniform_", "uniform", {"gain": 5 / 3}),
    ("xavier_normal_", "normal", {}),
    ("xavier_normal_", "normal", {"gain": math.sqrt(2)}),
]
KAIMING: list[tuple[str, str, dict]] = [
    (name, kind, kwargs)
    for name, kind in (("kaiming_uniform_", "uniform"), ("kaiming_normal_", "normal"))
    for kwargs in (
        {},
        {"nonlinearity": "relu"},
        {"mode": "fan_out", "nonlinearity": "relu"},
        {"a": 0.3},
        {"nonlinearity": "tanh"},
        {"mode": "fan_out", "nonlinearity": "linear"},
    )
]


def formula_variance(name, shape, kwargs):
    fan_in, fan_out = init.calculate_fan_in_and_fan_out(np.zeros(shape))
    if name.startswith("xavier"):
        return kwargs.get("gain", 1.0) ** 2 * 2.0 / (fan_in + fan_out)
    gain = torch.nn.init.calculate_gain(kwargs.get("nonlinearity", "leaky_relu"), kwargs.get("a", 0))
    return gain**2 / (fan_out if kwargs.get("mode") == "fan_out" else fan_in)


@pytest.mark.parametrize("name, kind, kwargs", XAVIER + KAIMING, ids=lambda v: str(v))
@pytest.mark.parametrize("shape", [(300, 500), (64, 16, 3, 3)])
def test_initialisers_match_the_formula_and_torchs_distribution(name, kind, kwargs, shape):
    ours = getattr(init, name)(np.zeros(shape), generator=0, **kwargs)
    theirs = torch_sample(getattr(torch.nn.init, name), shape, 0, **kwargs)
    expected = formula_variance(name, shape, kwargs)
    assert_variance(ours, expected, kind, f"ours {name}{shape} {kwargs}")
    assert_variance(theirs, expected, kind, f"torch's {name}{shape} {kwargs}")  # the formula is torch's
    a, b = ours.ravel()[:20000], theirs.ravel()[:20000]
    assert ks_statistic(a, b) < ks_critical(a.size, b.size), f"{name}{kwargs}: not distributed as torch's"
    if kind == "uniform":  # the same support
        assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=1e-3)


def test_the_distribution_check_can_fail():
    """A normal where torch draws a uniform of the same variance is caught."""
    theirs = torch_sample(torch.nn.init.xavier_uniform_, (300, 500), 0).ravel()[:20000]
    wrong = init.xavier_normal_(np.zeros((300, 500)), generator=0).ravel()[:20000]
    assert ks_statistic(wrong, theirs) > ks_critical(wrong.size, theirs.size)


# ----------------------------------------------------------------------------------------------- orthogonal
@pytest.mark.parametrize("shape", [(64, 64), (100, 30), (30, 100), (16, 8, 3, 3), (1, 5), (5, 1)])
@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_orthogonal_is_orthonormal_times_gain(shape, gain):
    p = Parameter(np.zeros(shape))
    assert init.orthogonal_(p, gain=gain, generator=0) is p
    m = p.data.reshape(shape[0], -1).astype(np.float64) / gain
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    assert np.abs(gram - np.eye(len(gram))).max() < 1e-5
    theirs = torch.nn.init.orthogonal_(torch.empty(shape), gain=gain).reshape(shape[0], -1).numpy() / gain
    gram_theirs = theirs.T @ theirs if m.shape[0] >= m.shape[1] else theirs @ theirs.T
    assert gram.shape == gram_theirs.shape


def orthogonal_without_sign_fix(shape, rng):
    q, _ = np.linalg.qr(rng.standard_normal(shape))
    return q


def test_orthogonal_is_distributed_as_torchs():
    n, draws = 5, 3000
    rng = np.random.default_rng(0)
    ours = np.array([init.orthogonal_(np.zeros((n, n)), generator=rng) for _ in range(draws)])
    torch.manual_seed(0)
    theirs = np.array([torch.nn.init.orthogonal_(torch.empty(n, n, dtype=torch.float64)).numpy() for _ in range(draws)])
    crit = ks_critical(draws, draws)
    for i, j in ((0, 0), (1, 3), (4, 4)):
        assert ks_statistic(ours[:, i, j], theirs[:, i, j]) < crit, f"entry ({i}, {j})"
    assert abs((np.linalg.det(ours) < 0).mean() - (np.linalg.det(theirs) < 0).mean()) < 0.06
    # the test has the power to see the classic mistake: QR without folding in the signs of diag(r)
    naive = np.array([orthogonal_without_sign_fix((n, n), rng) for _ in range(draws)])
    assert ks_statistic(naive[:, 0, 0], theirs[:, 0, 0]) > crit


def test_orthogonal_needs_two_dimensions():
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(np.zeros(3))


# ----------------------------------------------------------------------------------------------- in place, errors
@pytest.mark.parametrize(
    "name",
    [
        "xavier_uniform_",
        "xavier_normal_",
        "kaiming_uniform_",
        "kaiming_normal_",
        "orthogonal_",
        "uniform_",
        "normal_",
        "zeros_",
        "ones_",
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_initialisers_work_in_place_and_keep_the_dtype(name, dtype):
    p = Parameter(np.full((6, 4), 7.0), dtype=dtype)
    storage = p.data
    assert getattr(init, name)(p) is p
    assert p.data is storage and p.dtype == dtype and p.requires_grad and isinstance(p, Parameter)
    assert not np.any(p.data == 7.0)
    a = np.full((6, 4), 7.0, dtype=dtype)
    assert getattr(init, name)(a) is a and a.dtype == dtype


def test_constant_zeros_ones_match_torch():
    for ours, theirs in ((init.zeros_, torch.nn.init.zeros_), (init.ones_, torch.nn.init.ones_)):
        assert np.array_equal(ours(np.full((2, 3), 5.0)), theirs(torch.full((2, 3), 5.0)).numpy())
    assert np.array_equal(init.constant_(np.zeros(3), 0.25), torch.nn.init.constant_(torch.zeros(3), 0.25).numpy())


def test_initialisers_reject_bad_input_with_clear_errors():
    with pytest.raises(ValueError, match="mode 'fan_avg' not supported.*'fan_in', 'fan_out'"):
        init.kaiming_normal_(np.zeros((3, 3)), mode="fan_avg")
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(np.zeros(5))
    with pytest.raises(TypeError, match="only floating-point"):
        init.normal_(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="expected a Tensor, a Parameter or a NumPy array, got list"):
        init.zeros_([0.0, 1.0])
    with pytest.raises(TypeError, match="generator must be None, an int seed or a np.random.Generator"):
        init.normal_(np.zeros(2), generator="seed")


def test_seeds_make_initialisation_reproducible():
    init.manual_seed(3)
    a = init.kaiming_uniform_(np.zeros((4, 4)))
    init.manual_seed(3)
    assert np.array_equal(a, init.kaiming_uniform_(np.zeros((4, 4))))
    gen = np.random.default_rng(5)
    assert np.array_equal(
        init.orthogonal_(np.zeros((3, 3)), generator=5), init.orthogonal_(np.zeros((3, 3)), generator=gen)
    )


# ----------------------------------------------------------------------------------------------- forward hooks
def hooked_calls(model, layers, x):
    calls = []
    handles = [
        layer.register_forward_hook(
            lambda module, inputs, output, name=name: calls.append(
                (name, type(inputs).__name__, len(inputs), tuple(inputs[0].shape), tuple(output.shape))
            )
        )
        for name, layer in layers
    ]
    model(x)
    return calls, handles


def test_forward_hooks_are_called_like_torchs():
    """Same calls, same order (children before their container), same arguments, as torch.nn."""
    ours = Sequential(Linear(4, 3, rng=0), ReLU(), Linear(3, 2, rng=1))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    names = ["whole", "0", "1", "2"]
    got, handles = hooked_calls(ours, list(zip(names, [ours, *ours])), Tensor(np.ones((5, 4))))
    want, torch_handles = hooked_calls(theirs, list(zip(names, [theirs, *theirs])), torch.ones(5, 4))
    assert (
        got
        == want
        == [
            ("0", "tuple", 1, (5, 4), (5, 3)),
            ("1", "tuple", 1, (5, 3), (5, 3)),
            ("2", "tuple", 1, (5, 3), (5, 2)),
            ("whole", "tuple", 1, (5, 4), (5, 2)),
        ]
    )
    for handle in handles:
        handle.remove()
    for handle in torch_handles:
        handle.remove()
    calls = []
    ours.register_forward_hook(lambda *args: calls.append(1))
    ours(Tensor(np.ones((1, 4))))
    ours(Tensor(np.ones((2, 4))))
    assert len(calls) == 2, "one call per forward"


def test_a_removed_hook_is_not_called_and_removing_twice_is_harmless():
    layer, calls = Linear(2, 2, rng=0), []
    first = layer.register_forward_hook(lambda m, i, o: calls.append("first"))
    second = layer.register_forward_hook(lambda m, i, o: calls.append("second"))
    layer(Tensor(np.ones((1, 2))))
    first.remove()
    first.remove()
    layer(Tensor(np.ones((1, 2))))
    assert calls == ["first", "second", "second"]
    with second:
        pass
    layer(Tensor(np.ones((1, 2))))
    assert calls == ["first", "second", "second"] and len(layer._forward_hooks) == 0


def test_a_hook_that_returns_a_value_replaces_the_output_like_torch():
    ours, theirs = Linear(2, 2, rng=0), torch.nn.Linear(2, 2)
    ours.register_forward_hook(lambda m, i, out: out * 0 + 7)
    theirs.register_forward_hook(lambda m, i, out: out * 0 + 7)
    assert np.array_equal(ours(Tensor(np.ones((1, 2)))).data, theirs(torch.ones(1, 2)).detach().numpy())


def test_a_module_called_twice_calls_its_hook_twice():
    shared, calls = Linear(2, 2, rng=0), []
    model = Sequential(shared, ReLU(), shared)
    shared.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    model(Tensor(np.ones((3, 2))))
    assert calls == [(3, 2), (3, 2)]


def test_register_forward_hook_needs_a_callable_and_leaves_the_state_alone():
    layer = Linear(2, 2, rng=0)
    with pytest.raises(TypeError, match="needs a callable hook"):
        layer.register_forward_hook("print")
    layer.register_forward_hook(lambda m, i, o: None)
    assert list(layer.state_dict()) == ["weight", "bias"] and len(list(layer.parameters())) == 2


def test_hooks_work_on_a_module_whose_init_forgot_super():
    class NoSuper(Module):
        def __init__(self):
            self.w = Parameter(np.ones(2))

        def forward(self, x):
            return x * self.w

    m, calls = NoSuper(), []
    m(Tensor(np.ones(2)))  # no hooks registered yet: still callable
    m.register_forward_hook(lambda *a: calls.append(1))
    m(Tensor(np.ones(2)))
    assert calls == [1]


# ----------------------------------------------------------------------------------------------- the recorder
def test_recorder_records_each_layer_once_per_forward_and_the_grad_norms():
    model = Sequential(Linear(6, 5, rng=0), Tanh(), Linear(5, 3, rng=1))
    x = np.random.default_rng(0).normal(size=(8, 6))
    with Recorder(model) as rec:
        for _ in range(3):
            model.zero_grad()
            model(Tensor(x)).sum().backward()
            rec.record_grads()
    assert all(len(stats[s]) == 3 for stats in rec.activations.values() for s in Recorder.STATS)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    with torch.no_grad():
        theirs[0].weight.copy_(torch.tensor(model[0].weight.data))
        theirs[0].bias.copy_(torch.tensor(model[0].bias.data))
    with torch.no_grad():
        h = theirs[1](theirs[0](torch.tensor(x)))
    assert rec.activations["1"]["mean"][-1] == pytest.approx(float(h.mean()), abs=1e-6)
    assert rec.activations["1"]["std"][-1] == pytest.approx(float(h.std(unbiased=False)), abs=1e-6)
    assert rec.grad_norms["2.weight"][-1] == pytest.approx(float(np.linalg.norm(model[2].weight.grad)), rel=1e-6)
    assert rec.last("mean") == {name: v["mean"][-1] for name, v in rec.activations.items()}


def test_recorder_zero_fraction_counts_dead_relus():
    model = Sequential(Linear(2, 4, rng=0), ReLU())
    with Recorder(model, layer_types=ReLU) as rec, no_grad():
        out = model(Tensor(np.random.default_rng(1).normal(size=(50, 2))))
    assert list(rec.activations) == ["1"]
    assert rec.activations["1"]["zero_fraction"][0] == pytest.approx(float((out.data == 0).mean()))


class KeepsOutputs(Recorder):
    """A recorder with the classic leak: it keeps every output Tensor."""

    def __init__(self, model):
        super().__init__(model)
        self.outputs = []
        for module in model.modules():
            if not any(True for _ in module.children()):
                self.handles.append(module.register_forward_hook(lambda m, i, out: self.outputs.append(out)))


def memory_per_step(recorder_class, steps=30):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 32)).astype(np.float32), rng.integers(0, 10, size=64)
    model = Sequential(Linear(32, 128, rng=0), ReLU(), Linear(128, 128, rng=1), ReLU(), Linear(128, 10, rng=2))
    opt, loss_fn, rec = SGD(model.parameters(), lr=0.01), CrossEntropyLoss(), recorder_class(model)

    def step():
        out = model(Tensor(X))
        loss = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        rec.record_grads()
        opt.step()
        return weakref.ref(out), weakref.ref(loss)

    for _ in range(3):
        step()
    gc.collect()
    tracemalloc.start()
    try:
        step()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            refs = step()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / steps, all(r() is None for r in refs)


def test_recorder_keeps_no_graph_alive_memory_is_flat():
    growth, freed = memory_per_step(Recorder)
    assert freed
    assert growth < 4000, f"{growth:.0f} bytes per step"
    leaky_growth, leaky_freed = memory_per_step(KeepsOutputs)
    assert not leaky_freed and leaky_growth > 50_000, "the measurement must see a leak of the graph"
