"""micrograd_plus.training: DataLoader, train_epoch, evaluate, fit, plots, memory; MNIST end to end."""

import gc
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micrograd_plus import nn, optim
from micrograd_plus.tensor import Tensor, is_grad_enabled, no_grad
from micrograd_plus.training import (
    DataLoader,
    confusion_matrix,
    evaluate,
    fit,
    get_memory_usage,
    get_peak_memory,
    plot_training_history,
    predict,
    train_epoch,
)


# ------------------------------------------------------------------ DataLoader
def epoch_labels(loader):
    return [yb.tolist() for _, yb in loader]


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 150),
    batch_size=st.integers(1, 40),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_dataloader_every_sample_once_per_epoch(n, batch_size, shuffle, drop_last, seed):
    X = np.arange(2 * n).reshape(n, 2)
    y = np.arange(n)
    loader = DataLoader(X, y, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    full, rest = divmod(n, batch_size)
    expected_sizes = [batch_size] * full + ([rest] if rest and not drop_last else [])
    for _ in range(2):
        batches = list(loader)
        assert [len(yb) for _, yb in batches] == expected_sizes
        assert len(loader) == len(expected_sizes)
        seen = np.concatenate([yb for _, yb in batches]) if batches else np.array([], dtype=int)
        assert len(np.unique(seen)) == len(seen)  # never twice
        if not drop_last:
            assert sorted(seen.tolist()) == list(range(n))  # every sample once
        if not shuffle:
            assert seen.tolist() == list(range(len(seen)))
        for xb, yb in batches:
            assert np.array_equal(xb[:, 0] // 2, yb)  # aligned


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(20, 100))
def test_dataloader_seeded_shuffling_is_reproducible_and_new_each_epoch(seed, n):
    X, y = np.zeros((n, 1)), np.arange(n)
    a = DataLoader(X, y, batch_size=7, shuffle=True, seed=seed)
    b = DataLoader(X, y, batch_size=7, shuffle=True, seed=seed)
    epochs_a = [epoch_labels(a) for _ in range(3)]
    assert epochs_a == [epoch_labels(b) for _ in range(3)]  # same seed, same sequence of epochs
    assert epochs_a[0] != epochs_a[1] or epochs_a[1] != epochs_a[2]  # a new permutation each epoch


def test_dataloader_shuffles_like_a_seeded_permutation():
    loader = DataLoader(np.zeros((10, 1)), np.arange(10), batch_size=10, shuffle=True, seed=123)
    rng = np.random.default_rng(123)
    assert epoch_labels(loader) == [rng.permutation(10).tolist()]
    assert epoch_labels(loader) == [rng.permutation(10).tolist()]


def test_dataloader_unshuffled_batches_are_views():
    X = np.zeros((100, 5), dtype=np.float32)
    xb, yb = next(iter(DataLoader(X, np.arange(100), batch_size=10)))
    assert np.shares_memory(xb, X)  # slices, no copy


def test_dataloader_errors_and_repr():
    with pytest.raises(ValueError, match="X has 3 samples but y has 2"):
        DataLoader(np.zeros((3, 1)), np.zeros(2))
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            DataLoader(np.zeros((3, 1)), np.zeros(3), batch_size=bad)
    assert (
        repr(DataLoader(np.zeros((3, 1)), np.zeros(3), 2))
        == "DataLoader(3 samples, batch_size=2, shuffle=False, drop_last=False)"
    )


# ------------------------------------------------------------------ train_epoch / evaluate
def blobs(n=120, seed=0, d=4):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(-1, 0.6, (n // 2, d)), rng.normal(1, 0.6, (n - n // 2, d))]).astype(np.float32)
    return X, np.repeat([0, 1], [n // 2, n - n // 2])


def mlp(d=4, seed=0):
    return nn.Sequential(nn.Linear(d, 8, rng=seed), nn.ReLU(), nn.Linear(8, 2, rng=seed + 1))


class Probe(nn.Module):
    def __init__(self, d=4):
        super().__init__()
        self.lin = nn.Linear(d, 2, rng=0)
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, is_grad_enabled(), x.shape[0]))
        return self.lin(x)


def test_train_epoch_decreases_the_loss_and_moves_the_parameters():
    X, y = blobs()
    model = mlp()
    before = [p.data.copy() for p in model.parameters()]
    opt = optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(X, y, batch_size=16, shuffle=True, seed=0)
    history = [train_epoch(model, loader, nn.CrossEntropyLoss(), opt) for _ in range(8)]
    losses = [loss for loss, _ in history]
    assert losses[-1] < 0.5 * losses[0]
    assert history[-1][1] > 0.95
    assert all(not np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))
    assert all(isinstance(v, float) for h in history for v in h)


def test_train_epoch_weighted_mean_loss_and_accuracy_and_mode():
    X, y = blobs(50)
    probe = Probe()
    probe.eval()
    loss, acc = train_epoch(
        probe, DataLoader(X, y, batch_size=16), nn.CrossEntropyLoss(), optim.SGD(probe.parameters(), lr=0.0)
    )
    assert [n for _, _, n in probe.seen] == [16, 16, 16, 2]
    assert all(training and grad for training, grad, _ in probe.seen)
    with no_grad():
        logits = probe.lin(Tensor(X))
        full = nn.CrossEntropyLoss()(logits, y).item()
    assert loss == pytest.approx(full, abs=1e-6)
    assert acc == pytest.approx(float((logits.data.argmax(1) == y).mean()))
    with pytest.raises(ValueError, match="no batch"):
        train_epoch(probe, [], nn.CrossEntropyLoss(), optim.SGD(probe.parameters(), lr=0.1))


def test_train_epoch_matches_pytorch():
    """One epoch of Adam on the same batches gives PyTorch's weights."""
    torch = pytest.importorskip("torch")
    X, y = blobs(96, seed=3)
    model = mlp(seed=5)
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        for mine, theirs in zip([model[0], model[2]], [tmodel[0], tmodel[2]]):
            theirs.weight.copy_(torch.from_numpy(mine.weight.data.copy()))
            theirs.bias.copy_(torch.from_numpy(mine.bias.data.copy()))
    loss, _ = train_epoch(
        model,
        DataLoader(X, y, batch_size=32, shuffle=True, seed=9),
        nn.CrossEntropyLoss(),
        optim.Adam(model.parameters(), lr=1e-2),
    )
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-2)
    total = 0.0
    for xb, yb in DataLoader(X, y, batch_size=32, shuffle=True, seed=9):
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(xb)), torch.from_numpy(yb))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        total += tloss.item() * len(yb)
    assert loss == pytest.approx(total / len(y), rel=1e-5)
    for mine, theirs in zip([model[0], model[2]], [tmodel[0], tmodel[2]]):
        np.testing.assert_allclose(mine.weight.data, theirs.weight.detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(mine.bias.data, theirs.bias.detach().numpy(), atol=1e-5)


def test_evaluate_no_graph_eval_mode_and_restore():
    X, y = blobs(70)
    probe = Probe()
    loss, acc = evaluate(probe, DataLoader(X, y, batch_size=32), nn.CrossEntropyLoss())
    assert all(not training and not grad for training, grad, _ in probe.seen)
    assert probe.training and all(p.grad is None for p in probe.parameters())
    with no_grad():
        logits = probe.lin(Tensor(X))
    assert loss == pytest.approx(nn.CrossEntropyLoss()(logits, y).item(), abs=1e-6)
    assert acc == pytest.approx(float((logits.data.argmax(1) == y).mean()))
    probe.eval()
    evaluate(probe, DataLoader(X, y, batch_size=32), nn.CrossEntropyLoss())
    assert not probe.training

    def failing():
        yield X[:4], y[:4]
        raise RuntimeError("boom")

    probe.train()
    with pytest.raises(RuntimeError, match="boom"):
        evaluate(probe, failing(), nn.CrossEntropyLoss())
    assert probe.training and is_grad_enabled()
    with pytest.raises(ValueError, match="no batch"):
        evaluate(probe, [], nn.CrossEntropyLoss())


def test_evaluate_uses_eval_mode_for_dropout():
    X, y = blobs(64)
    model = nn.Sequential(nn.Linear(4, 32, rng=0), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2, rng=1))
    loader = DataLoader(X, y, batch_size=16)
    first = evaluate(model, loader, nn.CrossEntropyLoss())
    assert evaluate(model, loader, nn.CrossEntropyLoss()) == first  # deterministic: dropout is off


# ------------------------------------------------------------------ fit, plots, helpers
def test_fit_history_scheduler_and_progress(capsys):
    X, y = blobs()
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.2)
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = fit(
        model,
        DataLoader(X, y, 16, shuffle=True, seed=0),
        nn.CrossEntropyLoss(),
        opt,
        epochs=3,
        val_loader=DataLoader(X, y, 64),
        scheduler=scheduler,
        progress=True,
    )
    assert set(history) == {"train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds", "lr", "batch_loss"}
    assert all(len(v) == 3 for k, v in history.items() if k != "batch_loss")
    batches = len(DataLoader(X, y, 16))
    assert len(history["batch_loss"]) == 3 * batches  # one loss per iteration, for the per-iteration curve
    sizes = [min(16, len(X) - 16 * i) for i in range(batches)]
    for epoch in range(3):  # an epoch's mean loss per sample is its batch losses weighted by batch size
        assert np.average(
            history["batch_loss"][epoch * batches : (epoch + 1) * batches], weights=sizes
        ) == pytest.approx(history["train_loss"][epoch], rel=1e-5)
    assert history["lr"] == pytest.approx([0.2, 0.1, 0.05])
    assert history["val_acc"][-1] == evaluate(model, DataLoader(X, y, 64), nn.CrossEntropyLoss())[1]
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "val accuracy" in err  # the tqdm bars


def test_fit_without_tqdm_prints_one_line_per_epoch(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    X, y = blobs()
    model = mlp()
    history = fit(model, DataLoader(X, y, 32), nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), epochs=2)
    out = capsys.readouterr().out
    assert out.count("epoch ") == 2 and "epoch 2/2: loss" in out
    assert history["val_loss"] == [] and len(history["train_loss"]) == 2
    fit(
        model,
        DataLoader(X, y, 32),
        nn.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=0.1),
        epochs=1,
        progress=False,
    )
    assert capsys.readouterr().out == ""


def test_plot_training_history(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = {
        "train_loss": [1.0, 0.5, 0.3],
        "train_acc": [0.6, 0.8, 0.9],
        "val_loss": [1.1, 0.6, 0.4],
        "val_acc": [0.55, 0.75, 0.85],
        "epoch_seconds": [1, 1, 1],
        "lr": [0.1] * 3,
    }
    fig = plot_training_history(history, val_label="test")
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "test (end of epoch)"]
    assert loss_ax.get_xlabel() == "epoch"
    assert list(acc_ax.lines[1].get_ydata()) == [0.55, 0.75, 0.85]
    plt.close(fig)
    # with per-batch losses: the loss per iteration, its moving average, test points at each epoch's end
    fig = plot_training_history(
        {**history, "batch_loss": [1.2, 0.8, 0.6, 0.4, 0.35, 0.25]}, val_label="test", smoothing=2
    )
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == acc_ax.get_xlabel() == "iteration"
    each, mean, test = loss_ax.lines
    assert list(each.get_ydata()) == [1.2, 0.8, 0.6, 0.4, 0.35, 0.25]
    assert list(mean.get_ydata()) == pytest.approx([1.0, 0.7, 0.5, 0.375, 0.3])
    assert list(test.get_xdata()) == [2.0, 4.0, 6.0] and list(test.get_ydata()) == [1.1, 0.6, 0.4]
    plt.close(fig)
    fig = plot_training_history({**history, "val_loss": [], "val_acc": []})
    assert len(fig.axes[0].lines) == 1
    plt.close(fig)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"micrograd-plus\[viz\]"):
        plot_training_history(history)


def test_get_memory_usage_and_fallbacks(monkeypatch):
    import psutil

    with_psutil = get_memory_usage()
    assert with_psutil == pytest.approx(psutil.Process().memory_info().rss / 2**20, rel=0.05)
    monkeypatch.setitem(sys.modules, "psutil", None)
    assert get_memory_usage() == pytest.approx(with_psutil, rel=0.1)  # /proc/self/statm
    import builtins

    real_open = builtins.open
    monkeypatch.setattr(
        builtins,
        "open",
        lambda f, *a, **k: (
            (_ for _ in ()).throw(OSError("no /proc")) if f == "/proc/self/statm" else real_open(f, *a, **k)
        ),
    )
    with pytest.warns(RuntimeWarning, match="PEAK resident memory"):
        peak = get_memory_usage()
    assert peak == pytest.approx(get_peak_memory()) and peak >= with_psutil * 0.9


def test_predict_and_confusion_matrix():
    X, y = blobs(30)
    model = mlp()
    logits = predict(model, X, batch_size=7)
    with no_grad():
        np.testing.assert_allclose(logits, model(Tensor(X)).data, rtol=1e-6, atol=1e-6)
    assert model.training
    cm = confusion_matrix(y, logits.argmax(1), 2)
    assert cm.sum() == 30 and np.trace(cm) == (logits.argmax(1) == y).sum()
    assert confusion_matrix([0, 2], [1, 2]).tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 1]]


# ------------------------------------------------------------------ memory stays flat
def live_tensors():
    gc.collect()
    return sum(issubclass(type(o), Tensor) for o in gc.get_objects())


@pytest.mark.slow
def test_memory_stays_flat_across_epochs(mnist_root):
    """No graph, batch or tensor survives an epoch: the number of live Tensors and the RSS stay flat."""
    from micrograd_plus.data import load_mnist

    (X, y), (Xt, yt) = load_mnist(mnist_root)
    X, y, Xt, yt = X[:4800], y[:4800], Xt[:2000], yt[:2000]
    model = nn.Sequential(
        nn.Linear(784, 256, rng=0), nn.ReLU(), nn.Linear(256, 128, rng=1), nn.ReLU(), nn.Linear(128, 10, rng=2)
    )
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loader, test_loader = DataLoader(X, y, 64, shuffle=True, seed=0), DataLoader(Xt, yt, 500)
    counts, rss = [], []
    for _ in range(3):
        train_epoch(model, loader, nn.CrossEntropyLoss(), opt)
        evaluate(model, test_loader, nn.CrossEntropyLoss())
        counts.append(live_tensors())
        rss.append(get_memory_usage())
    assert counts[0] == counts[1] == counts[2], f"live Tensors grow across epochs: {counts}"
    assert counts[0] <= 6 + 10, f"{counts[0]} Tensors alive after an epoch; expected about the 6 parameters"
    # 75 batches per epoch: a leaked batch (input, activations, graph) would add about 0.5 MiB each
    assert rss[2] - rss[1] < 16, f"RSS grew by {rss[2] - rss[1]:.1f} MiB in one epoch ({rss})"


# ------------------------------------------------------------------ end to end on real MNIST
@pytest.mark.slow
def test_mnist_mlp_reaches_95_percent(mnist_root):
    from micrograd_plus.data import load_mnist

    (X, y), (Xt, yt) = load_mnist(mnist_root)
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(784, 256, rng=rng), nn.ReLU(), nn.Linear(256, 128, rng=rng), nn.ReLU(), nn.Linear(128, 10, rng=rng)
    )
    history = fit(
        model,
        DataLoader(X, y, 64, shuffle=True, seed=0),
        nn.CrossEntropyLoss(),
        optim.Adam(model.parameters(), lr=1e-3),
        epochs=2,
        progress=False,
    )
    assert history["train_loss"][1] < history["train_loss"][0]
    accuracy = float((predict(model, Xt).argmax(1) == yt).mean())  # the official 10000 test images
    assert len(yt) == 10000 and accuracy > 0.95, accuracy
