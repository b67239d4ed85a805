"""micrograd_plus.gradcheck: relative error, centered differences, and the messages of a failed check."""

import numpy as np
import pytest

from micrograd_plus.gradcheck import GradientCheckError, check_gradient, numerical_gradient, rel_error
from micrograd_plus.tensor import Function, Tensor


def test_rel_error_is_cs231n_definition():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(1.0, 3.0) == pytest.approx(0.5)
    assert rel_error(np.array([0.0]), np.array([1e-9])) == pytest.approx(0.1)  # floor 1e-8 in the denominator
    assert rel_error(np.array([1.0, 0.0]), np.array([1.0, 1e-6])) == pytest.approx(1.0)  # elementwise, then max
    assert isinstance(rel_error(1.0, 2.0), float)


def test_numerical_gradient_matches_analytic_derivatives():
    x = Tensor([[0.5, -1.0], [2.0, 3.0]], dtype=np.float64)
    y = Tensor([1.5, -0.5], dtype=np.float64)
    gx, gy = numerical_gradient(lambda a, b: (a * b).exp(), [x, y])
    np.testing.assert_allclose(gx, y.data * np.exp(x.data * y.data), rtol=1e-7)
    np.testing.assert_allclose(gy, (x.data * np.exp(x.data * y.data)).sum(axis=0), rtol=1e-7)
    assert gx.dtype == np.float64 and gx.shape == (2, 2) and gy.shape == (2,)


def test_numerical_gradient_with_upstream_gradient_and_closure():
    w = Tensor([1.0, 2.0, 3.0], requires_grad=True)  # float32, used through a closure
    upstream = np.array([1.0, -1.0, 2.0])
    [g] = numerical_gradient(lambda _: w * w, [w], grad_output=upstream)
    np.testing.assert_allclose(g, 2 * np.array([1.0, 2.0, 3.0]) * upstream, rtol=1e-8)
    assert w.data.dtype == np.float32 and w.requires_grad and w.grad is None  # restored


def test_numerical_gradient_restores_inputs_even_on_error():
    x = Tensor([1.0, 2.0])
    original = x.data

    def boom(t):
        raise KeyError("boom")

    with pytest.raises(KeyError):
        numerical_gradient(boom, [x])
    assert x.data is original


def test_check_gradient_passes_and_restores_float32_inputs():
    x = Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    x.grad = np.full((3, 4), 7.0, dtype=np.float32)
    err = check_gradient(lambda t: (t.tanh() * t).sum(axis=1), [x])
    assert err < 1e-7
    assert x.data.dtype == np.float32 and np.all(x.grad == 7.0)


class BrokenSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x  # missing factor 2


def test_failed_check_names_input_shape_index_values_and_error():
    x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, dtype=np.float64)
    with pytest.raises(GradientCheckError) as info:
        check_gradient(BrokenSquare.apply, [x], name="BrokenSquare")
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    for part in ("BrokenSquare", "input 0", "shape (2, 2)", "index (", "analytic", "numerical", "relative error 0.333"):
        assert part in message, f"{part!r} missing from: {message}"


def test_failed_check_on_the_second_input_only():
    class WrongSecond(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return grad, grad  # the first is wrong too, but only y is checked

    x = Tensor([2.0, 3.0], dtype=np.float64)  # no grad: held fixed
    y = Tensor([1.0, 1.0], requires_grad=True, dtype=np.float64)
    with pytest.raises(GradientCheckError, match="input 1 \\(shape \\(2,\\)\\)"):
        check_gradient(WrongSecond.apply, [x, y])
    assert check_gradient(lambda a, b: a * b, [x, y]) < 1e-8


def test_check_catches_transposed_gradients_that_ones_would_hide():
    class SymmetricLie(Function):
        @staticmethod
        def forward(ctx, x):
            return x.T.copy()

        @staticmethod
        def backward(ctx, grad):
            return grad  # should be grad.T: with an all-ones upstream gradient nobody notices

    x = Tensor(np.ones((3, 3)), requires_grad=True, dtype=np.float64)
    with pytest.raises(GradientCheckError):
        check_gradient(SymmetricLie.apply, [x])


def test_missing_wrong_shape_and_nan_gradients():
    class Detached(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return None

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, grad):
            return np.ones(2)

    class NaNGrad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * np.nan

    x = Tensor(np.ones((2, 2)), requires_grad=True, dtype=np.float64)
    with pytest.raises(GradientCheckError, match="None"):
        check_gradient(Detached.apply, [x])
    with pytest.raises((GradientCheckError, ValueError), match=r"shape"):
        check_gradient(WrongShape.apply, [x])
    with pytest.raises(GradientCheckError, match="nan"):
        check_gradient(NaNGrad.apply, [x])


def test_nothing_to_check_and_output_without_graph():
    with pytest.raises(ValueError, match="no input has requires_grad"):
        check_gradient(lambda t: t * 2, [Tensor([1.0])])
    x = Tensor([1.0], requires_grad=True)
    with pytest.raises(GradientCheckError, match="does not require grad"):
        check_gradient(lambda t: t.detach() * 2, [x])


def test_atol_accepts_round_off_noise_only():
    x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    assert check_gradient(lambda t: t * 1e-9, [x], atol=0.0, tol=1e-5) < 1e-5
    with pytest.raises(GradientCheckError):
        check_gradient(BrokenSquare.apply, [x], atol=1e-3)
