"""The everyday Tensor methods given in lab 02, section 11: values and gradients vs numerical and PyTorch (float64)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from micrograd_plus import tensor as T  # noqa: E402
from micrograd_plus.gradcheck import check_gradient  # noqa: E402
from micrograd_plus.tensor import Tensor  # noqa: E402

# name, our function, PyTorch's, input shapes, input transform (keeps inputs away from kinks / in the domain)
AWAY = lambda a: np.where(np.abs(a) < 0.2, a + 0.5, a)  # noqa: E731
METHODS = [
    ("abs", lambda a: a.abs(), lambda a: a.abs(), [(3, 4)], AWAY),
    ("sqrt", lambda a: a.sqrt(), lambda a: a.sqrt(), [(3, 4)], lambda a: np.abs(a) + 0.5),
    ("clamp", lambda a: a.clamp(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7), [(3, 4)], AWAY),
    ("clip min only", lambda a: a.clip(min=0.1), lambda a: a.clip(min=0.1), [(3, 4)], AWAY),
    ("min", lambda a: a.min(), lambda a: a.amin(), [(3, 4)], None),
    ("min dim keepdim", lambda a: a.min(dim=1, keepdim=True), lambda a: a.amin(dim=1, keepdim=True), [(3, 4)], None),
    ("softmax", lambda a: a.softmax(dim=1), lambda a: a.softmax(dim=1), [(3, 4)], None),
    ("softmax axis 0", lambda a: a.softmax(axis=0), lambda a: a.softmax(dim=0), [(3, 4)], None),
    ("log_softmax", lambda a: a.log_softmax(dim=-1), lambda a: a.log_softmax(dim=-1), [(3, 4)], None),
    ("var", lambda a: a.var(), lambda a: a.var(), [(3, 4)], None),
    ("var dim biased", lambda a: a.var(dim=1, unbiased=False), lambda a: a.var(dim=1, unbiased=False), [(3, 4)], None),
    (
        "var correction 0 keepdim",
        lambda a: a.var(dim=0, correction=0, keepdim=True),
        lambda a: a.var(dim=0, correction=0, keepdim=True),
        [(3, 4)],
        None,
    ),
    ("std", lambda a: a.std(dim=1), lambda a: a.std(dim=1), [(3, 4)], None),
    ("view", lambda a: a.view(4, 3), lambda a: a.view(4, 3), [(3, 4)], None),
    ("flatten", lambda a: a.flatten(), lambda a: a.flatten(), [(2, 3, 2)], None),
    ("flatten 1", lambda a: a.flatten(1), lambda a: a.flatten(1), [(2, 3, 2)], None),
    ("unsqueeze", lambda a: a.unsqueeze(1), lambda a: a.unsqueeze(1), [(3, 4)], None),
    ("unsqueeze -1", lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1), [(3, 4)], None),
    ("squeeze", lambda a: a.squeeze(), lambda a: a.squeeze(), [(3, 1, 4)], None),
    ("squeeze dim", lambda a: a.squeeze(1), lambda a: a.squeeze(1), [(3, 1, 4)], None),
    ("permute", lambda a: a.permute(1, 2, 0), lambda a: a.permute(1, 2, 0), [(2, 3, 4)], None),
    ("cat", lambda a, b: T.cat([a, b, a], dim=1), lambda a, b: torch.cat([a, b, a], dim=1), [(3, 2), (3, 4)], None),
    ("stack", lambda a, b: T.stack([a, b], dim=1), lambda a, b: torch.stack([a, b], dim=1), [(3, 4), (3, 4)], None),
    ("where", lambda a, b: T.where(a.data > 0, a, b), lambda a, b: torch.where(a > 0, a, b), [(3, 4), (3, 4)], None),
    (
        "where broadcast",
        lambda a, b: T.where(a.data > 0, a, b),
        lambda a, b: torch.where(a > 0, a, b),
        [(3, 4), (4,)],
        None,
    ),
    ("maximum", lambda a, b: T.maximum(a, b), lambda a, b: torch.maximum(a, b), [(3, 4), (3, 4)], None),
    ("minimum", lambda a, b: a.minimum(b), lambda a, b: torch.minimum(a, b), [(3, 4), (3, 4)], None),
    (
        "sum dim",
        lambda a: a.sum(dim=(0, 2), keepdim=True),
        lambda a: a.sum(dim=(0, 2), keepdim=True),
        [(2, 3, 4)],
        None,
    ),
    ("mean dim", lambda a: a.mean(dim=1), lambda a: a.mean(dim=1), [(2, 3, 4)], None),
    ("max dim", lambda a: a.max(dim=-1), lambda a: a.amax(dim=-1), [(2, 3, 4)], None),
]


def inputs(shapes, transform, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-2, 2, size=s) for s in shapes]
    return [transform(a) if transform else a for a in arrays]


@pytest.mark.parametrize("name, ours, theirs, shapes, transform", METHODS, ids=[m[0] for m in METHODS])
def test_method_matches_torch_and_numerical_gradient(name, ours, theirs, shapes, transform):
    arrays = inputs(shapes, transform)
    error = check_gradient(ours, [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays], name=name)
    assert error < 1e-6
    mine = [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
    out = ours(*mine)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(upstream)
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    expected = theirs(*ref)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(m.grad, r.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_float32_stays_float32():
    x = Tensor(np.random.default_rng(0).uniform(-2, 2, (3, 4)).astype(np.float32), requires_grad=True)
    for out in (
        x.abs(),
        x.sqrt() if False else x.abs().sqrt(),
        x.clamp(-1, 1),
        x.softmax(dim=1),
        x.log_softmax(),
        x.var(),
        x.std(dim=0),
        T.cat([x, x]),
        T.stack([x, x]),
        T.where(x.data > 0, x, 0.0),
        x.min(),
    ):
        assert out.dtype == np.float32


def test_values_only_methods_and_constructors():
    x = Tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
    assert x.argmax().item() == 4 and x.argmin().item() == 1
    assert x.argmax(dim=1).tolist() == [2, 1] and x.argmax(dim=1).dtype == np.int64
    assert x.argmin(axis=0, keepdims=True).shape == (1, 3)
    assert x.tolist() == [[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]]
    assert x.double().dtype == np.float64 and x.long().dtype == np.int64 and x.long().float().dtype == np.float32
    assert x.astype(np.float16).dtype == np.float16 and x.dim() == 2
    assert T.zeros(2, 3).shape == (2, 3) and T.zeros((2, 3)).dtype == np.float32 and T.ones(4).data.sum() == 4
    assert T.randn(3, 2, rng=0).shape == (3, 2) and np.array_equal(T.randn(3, rng=0).data, T.randn(3, rng=0).data)
    assert T.zeros_like(x).shape == x.shape and T.ones_like(Tensor([1, 2])).dtype == np.int64
    assert (
        T.arange(3).dtype == np.int64
        and T.arange(0.0, 1.0, 0.25).dtype == np.float32
        and T.arange(1, 4).tolist() == [1, 2, 3]
    )
    assert T.zeros(2, requires_grad=True).requires_grad
    with pytest.raises(TypeError, match="axis= or dim="):
        x.sum(axis=0, dim=1)
    with pytest.raises(ValueError, match="at least one"):
        T.cat([])
    assert x.squeeze(0).shape == (2, 3) and Tensor(1.0).flatten().shape == (1,)


def test_abs_gradient_at_zero_is_zero_like_torch():
    x = Tensor([0.0, -1.0, 2.0], dtype=np.float64, requires_grad=True)
    x.abs().sum().backward()
    t = torch.tensor([0.0, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    t.abs().sum().backward()
    assert np.array_equal(x.grad, t.grad.numpy())
