"""micrograd_plus.parallel: map_slices gives exactly one call's result; the optimizers using it still match torch."""

import numpy as np
import pytest

from micrograd_plus import optim, parallel
from micrograd_plus.tensor import Tensor

SHAPES = [(300, 7), (2100,), (3, 5)]  # two large enough to be sliced in the tests, one never


@pytest.fixture
def threads(monkeypatch):
    """Slice arrays of more than 2 * 256 elements over 3 threads; restore the setting afterwards."""
    previous = parallel.get_num_threads()
    monkeypatch.setattr(parallel, "MIN_SLICE", 256)
    parallel.set_num_threads(3)
    yield 3
    parallel.set_num_threads(previous)


def _train(make, steps=8):
    rng = np.random.default_rng(0)
    params = [Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in SHAPES]
    coef = [rng.uniform(0.5, 3.0, s).astype(np.float32) for s in SHAPES]
    opt = make(params)
    for _ in range(steps):
        for p, c in zip(params, coef):
            p.grad = (c * p.data + 0.1 * p.data**3).astype(np.float32)
        opt.step()
    return [p.data.copy() for p in params], opt


CASES = {
    "adam": ("Adam", {"lr": 0.01}),
    "adam-wd": ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    "adamw": ("AdamW", {"lr": 0.02, "betas": (0.5, 0.9), "weight_decay": 0.5}),
    "rmsprop": ("RMSprop", {"lr": 0.01}),
    "rmsprop-centered-momentum": ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.01}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_sliced_update_is_bit_identical(case, threads, monkeypatch):
    name, kwargs = CASES[case]
    calls = []
    original = parallel.map_slices

    def counting(fn, *arrays, **kw):
        calls.append(arrays[0].size)
        return original(fn, *arrays, **kw)

    sliced, _ = _train(lambda ps: getattr(optim, name)(ps, **kwargs))
    parallel.set_num_threads(1)
    single, _ = _train(lambda ps: getattr(optim, name)(ps, **kwargs))
    for a, b in zip(sliced, single):
        np.testing.assert_array_equal(a, b, err_msg=f"{name}({kwargs}): 3 threads differ from 1")
    monkeypatch.setattr("micrograd_plus.optimizers.map_slices", counting)
    parallel.set_num_threads(3)
    _train(lambda ps: getattr(optim, name)(ps, **kwargs), steps=1)
    assert sorted(calls) == sorted(int(np.prod(s)) for s in SHAPES), "the update does not go through map_slices"


@pytest.mark.torch
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_sliced_update_matches_torch(case, threads):
    torch = pytest.importorskip("torch")
    name, kwargs = CASES[case]
    ours, _ = _train(lambda ps: getattr(optim, name)(ps, **kwargs))
    rng = np.random.default_rng(0)
    params = [torch.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in SHAPES]
    coef = [rng.uniform(0.5, 3.0, s).astype(np.float32) for s in SHAPES]
    opt = getattr(torch.optim, name)(params, **kwargs, foreach=False)
    for _ in range(8):
        for p, c in zip(params, coef):
            x = p.detach().numpy()
            p.grad = torch.tensor((c * x + 0.1 * x**3).astype(np.float32))
        opt.step()
    for a, b in zip(ours, params):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-6, atol=1e-6, err_msg=f"{name}({kwargs})")


def test_map_slices_cuts_into_one_slice_per_thread(threads):
    seen = []

    def record(y, x):
        seen.append(y.size)
        y += 2 * x

    y, x = np.zeros((40, 50), dtype=np.float32), np.arange(2000, dtype=np.float32).reshape(40, 50)
    parallel.map_slices(record, y, x)
    assert len(seen) == 3 and sum(seen) == 2000
    np.testing.assert_array_equal(y, 2 * x)


def test_small_or_mismatched_arrays_run_in_one_call(threads):
    seen = []

    def record(*arrays):
        seen.append(arrays[0].shape)

    parallel.map_slices(record, np.zeros(500), np.zeros(500))  # under 2 slices of MIN_SLICE
    parallel.map_slices(record, np.zeros((100, 30)).T, np.zeros((30, 100)))  # not C-contiguous
    parallel.map_slices(record, np.zeros(3000), np.zeros(2999))  # shapes differ: fn's own error, if any
    assert seen == [(500,), (30, 100), (3000,)]


def test_an_error_in_a_slice_reaches_the_caller(threads):
    def fail(y):
        if y[0] > 0:
            raise ArithmeticError("slice failed")

    with pytest.raises(ArithmeticError, match="slice failed"):
        parallel.map_slices(fail, np.arange(3000, dtype=np.float32))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_non_positive_integers(bad):
    with pytest.raises(ValueError, match="positive integer"):
        parallel.set_num_threads(bad)


def test_default_threads_follow_the_environment(monkeypatch):
    monkeypatch.setenv("MICROGRAD_PLUS_NUM_THREADS", "3")
    assert parallel._default_threads() == 3
    monkeypatch.delenv("MICROGRAD_PLUS_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert parallel._default_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert 1 <= parallel._default_threads() <= 4
