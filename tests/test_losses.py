"""micrograd_plus.functional / losses / nn: every loss against numerical gradients, known values and PyTorch."""

import gc
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from micrograd_plus import functional as F
from micrograd_plus.gradcheck import check_gradient
from micrograd_plus import losses
from micrograd_plus.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, MultiMarginLoss
from micrograd_plus.tensor import Tensor, no_grad

F64 = np.float64
REDUCTIONS = ["mean", "sum", "none"]


def t64(a, requires_grad=True):
    return Tensor(np.asarray(a, dtype=F64), requires_grad=requires_grad, dtype=F64)


def torch_of(a, requires_grad=True):
    return torch.tensor(np.asarray(a, dtype=F64), requires_grad=requires_grad)


def compare_with_torch(ours_fn, torch_fn, inputs, rtol=1e-10, atol=1e-13):
    """Forward value and gradient wrt every input of ours vs torch, with a random upstream gradient."""
    ours_in = [t64(a) for a in inputs]
    theirs_in = [torch_of(a) for a in inputs]
    out, tout = ours_fn(*ours_in), torch_fn(*theirs_in)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(0).normal(size=out.shape)
    out.backward(g)
    tout.backward(torch.tensor(g))
    for mine, theirs in zip(ours_in, theirs_in):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=rtol, atol=atol)


RNG = np.random.default_rng(42)
LOGITS = RNG.normal(size=(6, 5)) * 3
LABELS = np.array([0, 4, 2, 2, 1, 3])
PROBS = RNG.dirichlet(np.ones(5), size=6)


# ----------------------------------------------------------------------------------------------- MSE
@pytest.mark.torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_matches_pytorch(reduction):
    x, y = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    compare_with_torch(
        lambda a, b: F.mse_loss(a, b, reduction), lambda a, b: TF.mse_loss(a, b, reduction=reduction), [x, y]
    )


def test_mse_values_gradients_and_errors():
    x = t64([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[1.0, 0.0], [0.0, 4.0]])
    assert F.mse_loss(x, y).item() == 3.25
    assert F.mse_loss(x, y, "sum").item() == 13.0
    target = t64(y)
    check_gradient(lambda *_: F.mse_loss(x, target), [x, target], name="mse_loss")
    check_gradient(lambda *_: F.mse_loss(x, target, "none"), [x, target], name="mse_loss none")
    assert F.mse_loss(Tensor([1.0, 2.0]), [1.0, 2.0]).dtype == np.float32
    with pytest.raises(ValueError, match=r"\(3, 1\).*\(3,\)"):
        F.mse_loss(Tensor(np.zeros((3, 1))), np.zeros(3))
    with pytest.raises(ValueError, match="reduction must be"):
        F.mse_loss(x, y, "avg")


# ----------------------------------------------------------------------------------------------- cross-entropy
@pytest.mark.torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["indices", "probabilities", "onehot-int", "onehot-float"])
def test_cross_entropy_matches_pytorch(reduction, kind):
    target = {
        "indices": LABELS,
        "probabilities": PROBS,
        "onehot-int": np.eye(5, dtype=np.int64)[LABELS],
        "onehot-float": np.eye(5)[LABELS],
    }[kind]
    torch_target = torch.tensor(target if kind != "onehot-int" else target.astype(F64))
    compare_with_torch(
        lambda z: F.cross_entropy(z, target, reduction),
        lambda z: TF.cross_entropy(z, torch_target, reduction=reduction),
        [LOGITS],
    )


def test_cross_entropy_is_one_fused_node_with_softmax_minus_onehot_gradient():
    z = t64(LOGITS)
    loss = F.cross_entropy(z, LABELS)
    assert loss.grad_fn is losses.CrossEntropyFunction and loss.shape == ()
    loss.backward()
    p = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    np.testing.assert_allclose(z.grad, (p - np.eye(5)[LABELS]) / 6, rtol=1e-12)
    z.zero_grad()
    for reduction in REDUCTIONS:
        check_gradient(lambda *_: F.cross_entropy(z, LABELS, reduction), [z], name=f"cross_entropy {reduction}")
        check_gradient(lambda *_: F.cross_entropy(z, PROBS, reduction), [z], name=f"cross_entropy probs {reduction}")


def test_cross_entropy_known_values_and_dtypes():
    assert np.isclose(F.cross_entropy(Tensor(np.zeros((3, 10))), np.array([0, 5, 9])).item(), np.log(10), rtol=1e-6)
    value = F.cross_entropy(t64([[2.0, 1.0, 0.1]], False), [0]).item()
    assert np.isclose(value, 0.4170300162778335, rtol=1e-14)
    loss = F.cross_entropy(Tensor([[2.0, 1.0, 0.1]]), np.array([0]))
    assert loss.dtype == np.float32
    # targets as a list, a Tensor of integers, or int32
    assert np.isclose(
        F.cross_entropy(t64(LOGITS, False), LABELS.tolist()).item(),
        F.cross_entropy(t64(LOGITS, False), Tensor(LABELS, dtype=np.int64)).item(),
    )
    assert np.isclose(
        F.cross_entropy(t64(LOGITS, False), LABELS.astype(np.int32)).item(),
        F.cross_entropy(t64(LOGITS, False), LABELS).item(),
    )


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, F64])
def test_cross_entropy_extreme_logits_are_finite_and_match_pytorch(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [-1e4, -1e4, -1e4]], dtype=dtype)
    y = np.array([1, 1, 2])
    ours = Tensor(z, requires_grad=True, dtype=dtype)
    loss = F.cross_entropy(ours, y)
    loss.backward()
    theirs = torch.tensor(z, requires_grad=True)
    tloss = TF.cross_entropy(theirs, torch.tensor(y))
    tloss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(ours.grad))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-6)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), atol=1e-7)


def test_cross_entropy_errors_name_the_problem():
    z = Tensor(np.zeros((3, 4)))
    with pytest.raises(
        IndexError, match=r"target 4 at position 1 is out of range for 4 classes \(valid class indices are 0..3\)"
    ):
        F.cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match="target -1 at position 2"):
        F.cross_entropy(z, np.array([0, 1, -1]))
    with pytest.raises(TypeError, match="class-index targets must be integers, got dtype float64"):
        F.cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(z, Tensor([0.0, 1.0, 2.0]))  # a float32 Tensor of labels
    assert F.cross_entropy(z, Tensor([0, 1, 2])).item() == pytest.approx(np.log(4))  # an int64 Tensor of labels
    with pytest.raises(ValueError, match=r"target of shape \(2,\) does not fit logits of shape \(3, 4\)"):
        F.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target of shape \(3, 3\)"):
        F.cross_entropy(z, np.eye(3))
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\), got shape \(4,\)"):
        F.cross_entropy(Tensor(np.zeros(4)), np.array([1]))
    with pytest.raises(ValueError, match="contains NaN"):
        F.cross_entropy(Tensor([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.cross_entropy(z, np.array([0, 1, 2]), reduction="avg")


@pytest.mark.torch
def test_log_softmax_matches_pytorch():
    for dim in (-1, 0, 1):
        compare_with_torch(lambda z: F.log_softmax(z, dim), lambda z: TF.log_softmax(z, dim=dim), [LOGITS])
    z = t64(LOGITS)
    check_gradient(lambda *_: F.log_softmax(z), [z], name="log_softmax")
    assert np.all(np.isfinite(F.log_softmax(Tensor([[1e4, -1e4]])).data))
    with pytest.raises(ValueError, match="dim=3 is out of range"):
        F.log_softmax(Tensor(np.zeros((2, 2))), dim=3)


# ----------------------------------------------------------------------------------------------- BCE with logits
@pytest.mark.torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_matches_pytorch(reduction):
    x = RNG.normal(size=(5, 3)) * 4
    y = RNG.uniform(size=(5, 3))
    ty = torch.tensor(y)
    compare_with_torch(
        lambda z: F.binary_cross_entropy_with_logits(z, y, reduction),
        lambda z: TF.binary_cross_entropy_with_logits(z, ty, reduction=reduction),
        [x],
    )
    z = t64(x)
    check_gradient(lambda *_: F.binary_cross_entropy_with_logits(z, y, reduction), [z], name="bce")


@pytest.mark.torch
def test_bce_extreme_logits_match_pytorch():
    x = np.array([1e4, -1e4, 50.0, -50.0, 0.0], dtype=np.float32)
    y = np.array([0.0, 0.0, 1.0, 1.0, 0.5], dtype=np.float32)
    ours = Tensor(x, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(ours, y)
    loss.backward()
    theirs = torch.tensor(x, requires_grad=True)
    tloss = TF.binary_cross_entropy_with_logits(theirs, torch.tensor(y))
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-6)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), atol=1e-7)
    assert ours.grad.dtype == np.float32


def test_bce_errors():
    with pytest.raises(ValueError, match=r"target of shape \(2,\) must have the input's shape \(2, 1\)"):
        F.binary_cross_entropy_with_logits(Tensor(np.zeros((2, 1))), np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        F.binary_cross_entropy_with_logits(Tensor([np.nan]), np.zeros(1))
    assert np.isclose(F.binary_cross_entropy_with_logits(Tensor([0.0]), Tensor([1.0])).item(), np.log(2))


# ----------------------------------------------------------------------------------------------- hinge
@pytest.mark.torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p, margin", [(1, 1.0), (2, 1.0), (1, 0.3), (2, 2.5)])
def test_multi_margin_matches_pytorch(reduction, p, margin):
    compare_with_torch(
        lambda z: F.multi_margin_loss(z, LABELS, p, margin, reduction),
        lambda z: TF.multi_margin_loss(z, torch.tensor(LABELS), p=p, margin=margin, reduction=reduction),
        [LOGITS * 0.3],
    )
    z = t64(LOGITS * 0.3)
    check_gradient(lambda *_: F.multi_margin_loss(z, LABELS, p, margin, reduction), [z], name="multi_margin_loss")


def test_multi_margin_known_value_and_errors():
    assert np.isclose(F.multi_margin_loss(t64([[0.1, 0.2, 0.4, 0.8]], False), [3]).item(), 0.325)
    z = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="p must be 1 or 2, got 3"):
        F.multi_margin_loss(z, [0, 1], p=3)
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        F.multi_margin_loss(Tensor(np.zeros(3)), [0])
    with pytest.raises(ValueError, match=r"one class index per sample, shape \(2,\)"):
        F.multi_margin_loss(z, [0, 1, 2])
    with pytest.raises(IndexError, match="out of range for 3 classes"):
        F.multi_margin_loss(z, [0, 3])
    with pytest.raises(TypeError, match="integers"):
        F.multi_margin_loss(z, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="NaN"):
        F.multi_margin_loss(Tensor([[np.nan, 1.0]]), [0])
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        MultiMarginLoss(p=0)


# ----------------------------------------------------------------------------------------------- modules and nn
@pytest.mark.torch
def test_loss_modules_match_pytorch_modules():
    pairs = [
        (MSELoss(), torch.nn.MSELoss(), RNG.normal(size=(6, 5))),
        (CrossEntropyLoss(reduction="sum"), torch.nn.CrossEntropyLoss(reduction="sum"), LABELS),
        (CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), PROBS),
        (BCEWithLogitsLoss(reduction="none"), torch.nn.BCEWithLogitsLoss(reduction="none"), RNG.uniform(size=(6, 5))),
        (MultiMarginLoss(p=2, margin=0.5), torch.nn.MultiMarginLoss(p=2, margin=0.5), LABELS),
    ]
    for ours, theirs, target in pairs:
        compare_with_torch(lambda z: ours(z, target), lambda z: theirs(z, torch.tensor(target)), [LOGITS])


def test_loss_module_reprs_and_validation():
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"
    assert repr(MultiMarginLoss(p=2)) == "MultiMarginLoss(p=2, margin=1.0, reduction='mean')"
    assert list(MSELoss().parameters()) == []
    with pytest.raises(ValueError, match="reduction"):
        BCEWithLogitsLoss(reduction="average")


def test_nn_namespace_reads_like_pytorch():
    import micrograd_plus
    from micrograd_plus import layers, losses, nn

    assert nn.Linear is layers.Linear and nn.CrossEntropyLoss is losses.CrossEntropyLoss
    assert nn.functional is F and F.linear is layers.linear and F.softmax is layers.softmax
    assert micrograd_plus.nn is nn
    assert set(nn.__all__) >= {
        "Module",
        "Parameter",
        "Linear",
        "ReLU",
        "Sigmoid",
        "Tanh",
        "Softmax",
        "Dropout",
        "BatchNorm1d",
        "LayerNorm",
        "Sequential",
        "Flatten",
        "MSELoss",
        "CrossEntropyLoss",
        "BCEWithLogitsLoss",
        "MultiMarginLoss",
    }
    for name in nn.__all__:
        assert getattr(nn, name) is not None
    model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
    loss = nn.CrossEntropyLoss()(model(Tensor(np.ones((2, 4)))), np.array([0, 2]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


# ----------------------------------------------------------------------------------------------- no leaks
def _live_tensors():
    gc.collect()
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), Tensor))


@pytest.mark.parametrize(
    "loss_fn, target",
    [
        (CrossEntropyLoss(), LABELS),
        (CrossEntropyLoss(), PROBS),
        (MSELoss(), PROBS),
        (BCEWithLogitsLoss(), PROBS),
        (MultiMarginLoss(), LABELS),
    ],
)
def test_a_training_step_with_each_loss_leaks_no_tensor(loss_fn, target):
    from micrograd_plus.layers import Linear, ReLU, Sequential

    model = Sequential(Linear(7, 16, rng=0), ReLU(), Linear(16, 5, rng=1))
    x = np.random.default_rng(0).normal(size=(6, 7)).astype(np.float32)

    def step():
        logits = model(Tensor(x))
        loss = loss_fn(logits, target)
        loss.backward()
        with no_grad():
            for p in model.parameters():
                p.data -= 0.05 * p.grad
        model.zero_grad()
        return weakref.ref(logits), weakref.ref(loss), loss.item()

    first = step()[2]
    before = _live_tensors()
    results = [step() for _ in range(3)]
    assert all(r() is None for res in results for r in res[:2]), "the step's graph must be freed immediately"
    assert _live_tensors() == before, "a training step left Tensors alive"
    assert results[-1][2] < first, "the manual SGD steps should lower the loss"


def test_a_training_step_with_adam_leaks_no_tensor():
    from micrograd_plus.layers import BatchNorm1d, Dropout, Linear, ReLU, Sequential
    from micrograd_plus.optimizers import Adam

    model = Sequential(Linear(7, 16, rng=0), BatchNorm1d(16), ReLU(), Dropout(0.1, rng=0), Linear(16, 5, rng=1))
    opt = Adam(model.parameters(), lr=1e-2)
    loss_fn = CrossEntropyLoss()
    x = np.random.default_rng(0).normal(size=(6, 7)).astype(np.float32)

    def step():
        logits = model(Tensor(x))
        loss = loss_fn(logits, LABELS)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return weakref.ref(logits), weakref.ref(loss)

    step()
    before = _live_tensors()
    refs = [r for _ in range(3) for r in step()]
    assert all(r() is None for r in refs)
    assert _live_tensors() == before
    assert all(p.grad is None for p in model.parameters())
