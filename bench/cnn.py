"""`make bench` (CNN part): lab 10's CIFAR-10 CNN in micrograd_plus against the same CNN in PyTorch on the CPU.

Same architecture, same initial weights (copied), same float32 batches in the same order, same
number of threads (OMP/OpenBLAS/MKL and torch.set_num_threads); the engines alternate, and the
figures are medians. Prints the seconds per epoch (extrapolated from --batches batches of 128),
the ratio, where micrograd_plus spends its time (im2col, col2im, the GEMMs, pooling, BatchNorm,
the rest) and the peak memory of one training step (tracemalloc: NumPy's allocations).

    python bench/cnn.py [--batches 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections import defaultdict

import numpy as np

BATCH = 128
EPOCH_BATCHES = 50000 // BATCH


def batches(count, seed=0):
    """Normalised, augmented CIFAR-10 training batches (real data when available, else random)."""
    from micrograd_plus.cnn import CIFAR10_MEAN, CIFAR10_STD
    from micrograd_plus.data import DatasetError, load_cifar10
    from micrograd_plus.images import ImageLoader, normalize

    try:
        (X, y), _ = load_cifar10()
    except DatasetError:
        rng = np.random.default_rng(seed)
        X, y = rng.random((count * BATCH, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, count * BATCH)
    X = normalize(X[: count * BATCH], CIFAR10_MEAN, CIFAR10_STD)
    return list(ImageLoader(X, y[: count * BATCH], BATCH, shuffle=True, augment=True, drop_last=True, seed=seed))


def mgp_epoch(data, profile=None):
    from micrograd_plus.cnn import cifar_cnn
    from micrograd_plus.losses import CrossEntropyLoss
    from micrograd_plus.optimizers import Adam
    from micrograd_plus.tensor import Tensor

    model = cifar_cnn(0)
    opt, loss_fn = Adam(model.parameters(), lr=2e-3), CrossEntropyLoss()
    start = time.perf_counter()
    for xb, yb in data:
        loss = loss_fn(model(Tensor(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start, model


def torch_epoch(data, model_state):
    import torch
    import torch.nn as nn

    def stage(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    model = nn.Sequential(*stage(3, 32), *stage(32, 64), *stage(64, 128), nn.Flatten(), nn.Linear(2048, 10))
    model.load_state_dict({k: torch.tensor(v) for k, v in model_state.items()})
    opt, loss_fn = torch.optim.Adam(model.parameters(), lr=2e-3), nn.CrossEntropyLoss()
    data = [(torch.from_numpy(np.ascontiguousarray(xb)), torch.from_numpy(yb)) for xb, yb in data]
    start = time.perf_counter()
    for xb, yb in data:
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def profile(data):
    """Seconds spent in each part of micrograd_plus's training steps on ``data``."""
    from micrograd_plus import conv, layers, tensor

    spent = defaultdict(float)

    def timed(owner, name, label):
        original = getattr(owner, name)
        raw = original.__func__ if isinstance(original, staticmethod) else original

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return raw(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - t

        setattr(owner, name, staticmethod(wrapper) if isinstance(owner, type) else wrapper)
        return owner, name, original

    patches = [
        timed(conv, "im2col", "im2col"),
        timed(conv, "col2im", "col2im"),
        timed(conv.Conv2dFunction, "forward", "conv forward"),
        timed(conv.Conv2dFunction, "backward", "conv backward"),
        timed(conv.MaxPool2dFunction, "forward", "max pool"),
        timed(conv.MaxPool2dFunction, "backward", "max pool"),
        timed(conv.BatchNorm2dFunction, "forward", "batch norm"),
        timed(conv.BatchNorm2dFunction, "backward", "batch norm"),
        timed(tensor.ReLUFunction, "forward", "relu"),
        timed(tensor.ReLUFunction, "backward", "relu"),
        timed(layers.LinearFunction, "forward", "linear"),
        timed(layers.LinearFunction, "backward", "linear"),
    ]
    try:
        total, _ = mgp_epoch(data)
    finally:
        for owner, name, original in reversed(patches):
            setattr(owner, name, original)
    parts = {
        "im2col": spent["im2col"],
        "conv GEMMs (forward)": spent["conv forward"] - spent["im2col"],
        "conv GEMMs (backward)": spent["conv backward"] - spent["col2im"],
        "col2im": spent["col2im"],
        "max pool": spent["max pool"],
        "batch norm": spent["batch norm"],
        "relu": spent["relu"],
        "linear": spent["linear"],
    }
    parts["the rest (loss, Adam, graph, copies)"] = total - sum(parts.values())
    return total, parts


def peak_step_memory(data):
    from micrograd_plus.cnn import cifar_cnn
    from micrograd_plus.losses import CrossEntropyLoss
    from micrograd_plus.optimizers import Adam
    from micrograd_plus.tensor import Tensor

    model = cifar_cnn(0)
    opt, loss_fn = Adam(model.parameters(), lr=2e-3), CrossEntropyLoss()
    xb, yb = data[0]
    for step in range(2):  # the second step has Adam's state allocated
        if step == 1:
            tracemalloc.start()
        loss = loss_fn(model(Tensor(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batches", type=int, default=40, help=f"batches of {BATCH} per timed run ({EPOCH_BATCHES} = an epoch)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    data = batches(args.batches)
    ours, theirs = [], []
    for _ in range(args.rounds):
        seconds, model = mgp_epoch(data)
        ours.append(seconds)
        theirs.append(
            torch_epoch(data, dict(__import__("micrograd_plus.cnn", fromlist=["x"]).cifar_cnn(0).state_dict().items()))
        )
    scale = EPOCH_BATCHES / len(data)
    m, t = statistics.median(ours) * scale, statistics.median(theirs) * scale
    print(
        f"CIFAR-10 CNN (lab 10), batch {BATCH}, 1 thread, {len(data)} batches x {args.rounds} rounds,"
        f" per epoch of {EPOCH_BATCHES} batches:"
    )
    print(f"  micrograd_plus {m:7.1f} s   PyTorch {t:7.1f} s   ratio {m / t:.2f}x")
    total, parts = profile(data)
    print(f"  where micrograd_plus's time goes ({total:.1f} s for {len(data)} batches):")
    for name, seconds in parts.items():
        print(f"    {name:40s} {seconds:6.2f} s  {100 * seconds / total:5.1f}%")
    print(f"  peak memory of one training step (batch {BATCH}): {peak_step_memory(data) / 2**20:.0f} MiB (tracemalloc)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
