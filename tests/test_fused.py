"""The optional fused optimizers (micrograd_plus.fused, lab 07): the same bits as Adam/AdamW, and a clear
error without numba. The plain NumPy path (Adam) is the one every other test exercises."""

import sys

import numpy as np
import pytest

from micrograd_plus import fused
from micrograd_plus.fused import FusedAdam, FusedAdamW
from micrograd_plus.optimizers import Adam, AdamW
from micrograd_plus.tensor import Tensor

SHAPES = [(784, 256), (256,), (3, 4, 5), (1,)]


def trajectory(cls, dtype, steps=6, seed=0, make_data=None, grad_dtype=None, **options):
    """Parameters after ``steps`` updates with seeded gradients (some huge, some tiny, one zero)."""
    rng = np.random.default_rng(seed)
    params = []
    for shape in SHAPES:
        data = rng.standard_normal(shape).astype(dtype)
        t = Tensor(data, dtype=dtype, requires_grad=True)
        if make_data is not None:
            t.data = make_data(t.data)
        params.append(t)
    opt = cls(params, **options)
    for step in range(steps):
        for p in params:
            scale = [1.0, 1e3, 1e-4, 0.0, 1.0, 10.0][step % 6]
            p.grad = (rng.standard_normal(p.data.shape) * scale).astype(grad_dtype or dtype)
        opt.step()
    return [p.data.copy() for p in params], opt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "plain, fast, options",
    [
        (Adam, FusedAdam, {}),
        (Adam, FusedAdam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
        (AdamW, FusedAdamW, {}),
        (AdamW, FusedAdamW, {"lr": 0.05, "weight_decay": 0.3}),
    ],
)
def test_fused_gives_the_same_bits_as_numpy(dtype, plain, fast, options):
    expected, _ = trajectory(plain, dtype, **options)
    got, opt = trajectory(fast, dtype, **options)
    for e, g in zip(expected, got):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_array_equal(g, e)
    state = opt.state[id(opt.param_groups[0]["params"][0])]
    assert state["step"] == 6 and state["exp_avg"].dtype == dtype


def test_parameters_the_kernel_cannot_take_go_through_adam():
    fortran = np.asfortranarray  # not C-contiguous: Adam._update's path, same numbers
    expected, _ = trajectory(Adam, np.float32, make_data=fortran)
    got, _ = trajectory(FusedAdam, np.float32, make_data=fortran)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)
    expected, _ = trajectory(Adam, np.float32, grad_dtype=np.float64)  # a gradient of another dtype
    got, _ = trajectory(FusedAdam, np.float32, grad_dtype=np.float64)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


def test_fused_adam_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    start = rng.standard_normal((64, 32)).astype(np.float32)
    w = Tensor(start.copy(), requires_grad=True)
    wt = torch.tensor(start.copy(), requires_grad=True)
    ours = FusedAdamW([w], lr=0.01, weight_decay=0.05)
    theirs = torch.optim.AdamW([wt], lr=0.01, weight_decay=0.05)
    for _ in range(10):
        g = rng.standard_normal(start.shape).astype(np.float32)
        w.grad, wt.grad = g.copy(), torch.tensor(g)
        ours.step()
        theirs.step()
    np.testing.assert_allclose(w.data, wt.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_without_numba_the_error_names_the_extra(monkeypatch):
    monkeypatch.setattr(fused, "_KERNEL", None)
    monkeypatch.setitem(sys.modules, "numba", None)  # what `import numba` sees when it is not installed
    with pytest.raises(ImportError, match=r"micrograd-plus\[fast\]"):
        FusedAdam([Tensor([1.0], requires_grad=True)])
