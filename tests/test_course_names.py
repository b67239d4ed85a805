"""The course documents' names and call shapes: each one does exactly what its PyTorch-named counterpart does."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from micrograd_plus.optimizers import SGD, Adam, RMSprop, SGDMomentum  # noqa: E402
from micrograd_plus.schedulers import LinearWarmupLR, StepLR, WarmupLR  # noqa: E402
from micrograd_plus.tensor import Tensor  # noqa: E402
from micrograd_plus.value import Value, visualize_computation_graph  # noqa: E402

GRADS = [np.array([0.5, -2.0, 1e-3]), np.array([-1.0, 0.25, 3.0]), np.array([0.1, 0.1, -0.1])]


def trajectory(make_ours, make_torch):
    start = np.array([1.0, -1.0, 0.5])
    ours = Tensor(start, dtype=np.float64, requires_grad=True)
    theirs = torch.tensor(start, requires_grad=True)
    opt, topt = make_ours([ours]), make_torch([theirs])
    for g in GRADS:
        ours.grad = g.copy()
        theirs.grad = torch.tensor(g)
        opt.step()
        topt.step()
    return ours.data, theirs.detach().numpy()


@pytest.mark.parametrize(
    "make_ours, make_torch",
    [
        (
            lambda p: Adam(p, lr=0.1, beta1=0.8, beta2=0.99, epsilon=1e-6),
            lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.8, 0.99), eps=1e-6),
        ),
        (lambda p: Adam(p, lr=0.1, beta1=0.5), lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.5, 0.999))),
        (
            lambda p: RMSprop(p, lr=0.01, beta=0.9, epsilon=1e-6),
            lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-6),
        ),
        (lambda p: SGDMomentum(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
        (
            lambda p: SGDMomentum(p, lr=0.1, momentum=0.5, nesterov=True),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, nesterov=True),
        ),
    ],
    ids=["adam-beta1-beta2-epsilon", "adam-beta1-only", "rmsprop-beta-epsilon", "sgdmomentum", "sgdmomentum-nesterov"],
)
def test_documents_optimizer_spellings_match_torch(make_ours, make_torch):
    ours, theirs = trajectory(make_ours, make_torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_both_spellings_of_one_hyper_parameter_must_agree():
    p = [Tensor([1.0], requires_grad=True)]
    with pytest.raises(TypeError, match=r"eps=0.1 and epsilon=0.2 name the same hyper-parameter"):
        Adam(p, eps=0.1, epsilon=0.2)
    with pytest.raises(TypeError, match="alpha=0.5 and beta=0.9"):
        RMSprop(p, alpha=0.5, beta=0.9)
    with pytest.raises(TypeError, match=r"betas\[0\]=0.7 and beta1=0.8"):
        Adam(p, betas=(0.7, 0.999), beta1=0.8)
    assert Adam(p, betas=(0.8, 0.99), beta1=0.8).param_groups[0]["betas"] == (0.8, 0.99)  # the same value twice
    assert isinstance(SGDMomentum(p, lr=0.1), SGD)


def test_warmup_lr_is_linear_warmup_with_the_documents_names():
    rates = {}
    for name, make in [
        ("docs", lambda o: WarmupLR(o, warmup_epochs=3, base_scheduler=StepLR(o, 2, gamma=0.5))),
        ("ours", lambda o: LinearWarmupLR(o, warmup_steps=3, after=StepLR(o, 2, gamma=0.5))),
    ]:
        opt = SGD([Tensor([0.0], requires_grad=True)], lr=1.0)
        sched = make(opt)
        rates[name] = []
        for _ in range(8):
            rates[name].append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
    assert rates["docs"] == rates["ours"]
    opt = SGD([Tensor([0.0], requires_grad=True)], lr=1.0)
    sched = WarmupLR(opt, 4)
    assert sched.warmup_epochs == 4 and sched.base_scheduler is None


def test_train_epoch_and_evaluate_take_the_documents_keywords():
    from micrograd_plus import nn, optim
    from micrograd_plus.training import DataLoader, evaluate, train_epoch

    X = np.array([[0.0, 1.0], [1.0, 0.0]] * 8, dtype=np.float32)
    y = np.array([0, 1] * 8)
    model = nn.Linear(2, 2, rng=0)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    loss, acc = train_epoch(model=model, dataloader=DataLoader(X, y, 4), loss_fn=loss_fn, optimizer=optimizer)
    val_loss, val_acc = evaluate(model=model, dataloader=DataLoader(X, y, 4), loss_fn=loss_fn)
    assert val_loss < loss and 0.0 <= acc <= 1.0 and val_acc == 1.0


def test_visualize_computation_graph_draws_values_and_tensors():
    pytest.importorskip("graphviz")
    a = Value(2.0, label="a")
    assert (
        visualize_computation_graph(a * 3).source == __import__("micrograd_plus.value").value.draw_graph(a * 3).source
    )
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    src = visualize_computation_graph((x @ Tensor([[1.0], [2.0]])).relu().sum(), rankdir="TB").source
    assert "MatMul" in src and "ReLU" in src and "Sum" in src and "shape (1, 2) float32" in src and "rankdir=TB" in src
    with pytest.raises(TypeError, match="draws a Value or a Tensor graph, got list"):
        visualize_computation_graph([1.0])


def test_the_documents_tensor_snippets_run():
    # 000/001: y_batch = Tensor(y_train[batch_idx]) with integer labels, then CrossEntropyLoss
    from micrograd_plus.losses import CrossEntropyLoss

    y_train = np.array([3, 1, 4, 1, 5])
    y_batch = Tensor(y_train[[0, 2]])
    assert y_batch.dtype == np.int64
    logits = Tensor(np.zeros((2, 6)), requires_grad=True)
    loss = CrossEntropyLoss()(logits, y_batch)
    loss.backward()
    assert loss.item() == pytest.approx(np.log(6)) and logits.grad.shape == (2, 6)
