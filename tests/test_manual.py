"""micrograd_plus.manual: the hand-written NumPy layers against numerical gradients and against PyTorch."""

import numpy as np
import pytest
import torch

from micrograd_plus.manual import (
    BatchNorm1d,
    CrossEntropyLoss,
    Linear,
    MSELoss,
    ReLU,
    Sigmoid,
    Tanh,
    TwoLayerMLP,
    gradient_check,
    numerical_gradient,
)
from micrograd_plus.gradcheck import rel_error
from micrograd_plus.tensor import Tensor
from micrograd_plus.tensor_graph import draw_tensor_graph

RNG = np.random.default_rng(0)


def torch_of(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def test_the_manual_layers_do_not_shadow_the_autograd_ones():
    import micrograd_plus

    assert micrograd_plus.Linear is not Linear
    assert micrograd_plus.manual.Linear is Linear


def test_numerical_gradient_restores_x_and_refuses_float32():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    grad = numerical_gradient(lambda: float(np.sum(np.sin(x))), x)
    assert np.array_equal(x, before)
    assert np.allclose(grad, np.cos(x), atol=1e-9)
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: 0.0, x.astype(np.float32))


@pytest.mark.parametrize(
    "layer",
    [Linear(5, 4, np.random.default_rng(1)), ReLU(), Sigmoid(), Tanh(), TwoLayerMLP(5, 7, 3, np.random.default_rng(2))],
    ids=lambda layer: type(layer).__name__,
)
def test_layers_pass_the_gradient_check(layer):
    x = RNG.standard_normal((6, 5))
    assert gradient_check(layer, x, tolerance=1e-7, verbose=False)


def test_gradient_check_fails_a_wrong_backward():
    class Wrong(Tanh):
        def backward(self, dL_dy):
            return dL_dy * (1.0 - self.y)  # not 1 - y²

    assert not gradient_check(Wrong(), RNG.standard_normal((3, 4)), verbose=False)


@pytest.mark.parametrize("act, ref", [(ReLU, torch.relu), (Sigmoid, torch.sigmoid), (Tanh, torch.tanh)])
def test_activations_match_torch_including_relu_at_zero(act, ref):
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    g = RNG.standard_normal(x.shape)
    xt = torch_of(x)
    yt = ref(xt)
    yt.backward(torch.tensor(g))
    layer = act()
    assert np.allclose(layer.forward(x), yt.detach().numpy())
    assert np.allclose(layer.backward(g), xt.grad.numpy())


def test_sigmoid_and_cross_entropy_are_finite_at_1e4():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert np.array_equal(Sigmoid().forward(np.array([-1e4, 1e4])), [0.0, 1.0])
        ce = CrossEntropyLoss()
        loss = ce.forward(np.array([[1e4, -1e4], [-1e4, 1e4]]), np.array([1, 1]))
        assert loss == pytest.approx(1e4)
        assert np.allclose(ce.backward(), [[0.5, -0.5], [0.0, 0.0]])


@pytest.mark.parametrize("one_hot", [False, True])
def test_cross_entropy_matches_torch(one_hot):
    z, labels = RNG.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
    zt = torch_of(z)
    torch.nn.functional.cross_entropy(zt, torch.tensor(labels)).backward()
    ce = CrossEntropyLoss()
    loss = ce.forward(z, np.eye(4)[labels] if one_hot else labels)
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(labels)).item())
    assert np.allclose(ce.backward(), zt.grad.numpy())
    assert rel_error(ce.backward(), numerical_gradient(lambda: ce.forward(z, labels), z)) < 1e-7


def test_cross_entropy_rejects_bad_targets():
    with pytest.raises(ValueError, match="indices"):
        CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="one-hot"):
        CrossEntropyLoss().forward(np.zeros((2, 3)), np.zeros((2, 2)))


def test_mse_matches_torch():
    p, t = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    pt = torch_of(p)
    torch.nn.functional.mse_loss(pt, torch.tensor(t)).backward()
    mse = MSELoss()
    assert mse.forward(p, t) == pytest.approx(torch.nn.functional.mse_loss(torch.tensor(p), torch.tensor(t)).item())
    assert np.allclose(mse.backward(), pt.grad.numpy())


def test_batchnorm_matches_torch_in_train_and_eval():
    bn, tbn = BatchNorm1d(3), torch.nn.BatchNorm1d(3).double()
    gamma, beta = RNG.standard_normal(3), RNG.standard_normal(3)
    bn.gamma, bn.beta = gamma.copy(), beta.copy()
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(gamma))
        tbn.bias.copy_(torch.tensor(beta))
    for _ in range(3):
        x, g = RNG.standard_normal((8, 3)) * 3 + 1, RNG.standard_normal((8, 3))
        xt = torch_of(x)
        tbn.zero_grad()
        yt = tbn(xt)
        yt.backward(torch.tensor(g))
        assert np.allclose(bn.forward(x), yt.detach().numpy())
        assert np.allclose(bn.backward(g), xt.grad.numpy())
        assert np.allclose(bn.dgamma, tbn.weight.grad.numpy()) and np.allclose(bn.dbeta, tbn.bias.grad.numpy())
    assert np.allclose(bn.running_mean, tbn.running_mean.numpy())
    assert np.allclose(bn.running_var, tbn.running_var.numpy())
    bn.eval()
    tbn.eval()
    x = RNG.standard_normal((4, 3))
    assert np.allclose(bn.forward(x), tbn(torch.tensor(x)).detach().numpy())
    bn.train()
    assert gradient_check(bn, RNG.standard_normal((6, 3)), tolerance=1e-7, verbose=False)


def test_linear_he_init_shape_and_errors():
    layer = Linear(1000, 300, np.random.default_rng(0))
    assert layer.W.shape == (300, 1000) and layer.b.shape == (300,)
    assert layer.W.var() == pytest.approx(2 / 1000, rel=0.02)
    with pytest.raises(ValueError, match=r"\(N, 1000\)"):
        layer.forward(np.zeros((2, 999)))


def test_two_layer_mlp_gradients_equal_autograd():
    net = TwoLayerMLP(20, 8, 4, np.random.default_rng(3))
    x, y = RNG.standard_normal((6, 20)), np.array([0, 1, 2, 3, 0, 1])
    from micrograd_plus.losses import cross_entropy

    params = [
        Tensor(a.copy(), requires_grad=True, dtype=np.float64) for a in (net.fc1.W, net.fc1.b, net.fc2.W, net.fc2.b)
    ]
    W1, b1, W2, b2 = params
    cross_entropy((Tensor(x, dtype=np.float64) @ W1.T + b1).relu() @ W2.T + b2, y).backward()
    net.loss.forward(net.forward(x), y)
    net.backward(net.loss.backward())
    for p, g in zip(params, (net.fc1.dW, net.fc1.db, net.fc2.dW, net.fc2.db)):
        assert rel_error(p.grad, g) < 1e-10


def test_train_step_lowers_the_loss():
    net = TwoLayerMLP(10, 16, 3, np.random.default_rng(4))
    x, y = RNG.standard_normal((32, 10)), RNG.integers(0, 3, 32)
    first = net.train_step(x, y, lr=0.1)
    for _ in range(50):
        last = net.train_step(x, y, lr=0.1)
    assert last < 0.5 * first


def test_draw_tensor_graph_shows_ops_and_shapes():
    pytest.importorskip("graphviz")
    W, x = Tensor(np.ones((3, 4)), requires_grad=True), Tensor(np.ones((4,)), requires_grad=True)
    source = draw_tensor_graph((W @ x).sum(), {id(W): "W"}).source
    assert "MatMul" in source and "Sum" in source
    assert "W | shape (3, 4)" in source and "shape (4,)" in source
