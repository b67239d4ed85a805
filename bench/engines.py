"""One benchmark run of one engine, in its own process: ``python bench/engines.py ENGINE --batch 64 ...``.

Every engine trains the course's MNIST MLP (784-256-128-10, ReLU, cross-entropy, Adam
lr=1e-3) on the same float32 data, from the same initial weights, in the same batch order,
and prints one JSON line: seconds per epoch, final test accuracy, peak memory.

Engines:
  numpy           hand-written forward and backward, no graph at all: the floor
  micrograd_plus  the course library, written as the labs write it, with glibc keeping freed
                  blocks for reuse (``micrograd_plus.memory.keep_freed_memory()``, as its ``fit`` does)
  micrograd_plus_fused
                  the same with ``micrograd_plus.fused.FusedAdam`` (lab 07's optional one-pass Adam, numba)
  torch           PyTorch on the CPU, the same loop
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZES = (784, 256, 128, 10)
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8


def load_data():
    """MNIST as float32 in [0, 1], flattened, with int64 labels (through the package's loader)."""
    sys.path.insert(0, str(ROOT))
    from micrograd_plus.data import load_mnist

    return load_mnist(flatten=True)


def initial_weights(seed: int):
    """He-normal weights stored (in, out) and zero biases, float32, shared by every engine."""
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        w = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        weights.append((w, np.zeros(fan_out, dtype=np.float32)))
    return weights


def batch_orders(n: int, epochs: int, seed: int):
    rng = np.random.default_rng(seed + 1)
    return [rng.permutation(n) for _ in range(epochs)]


# ------------------------------------------------------------------ numpy floor
class NumpyMLP:
    """Forward and backward by hand, Adam by hand: what any autograd engine must add to."""

    def __init__(self, weights):
        self.params = [p.copy() for wb in weights for p in wb]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def logits(self, x):
        w1, b1, w2, b2, w3, b3 = self.params
        h1 = np.maximum(x @ w1 + b1, 0)
        h2 = np.maximum(h1 @ w2 + b2, 0)
        return h2 @ w3 + b3

    def step(self, x, y):
        w1, b1, w2, b2, w3, b3 = self.params
        h1 = np.maximum(x @ w1 + b1, 0)
        h2 = np.maximum(h1 @ w2 + b2, 0)
        z = h2 @ w3 + b3
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        n = len(y)
        loss = -np.log(p[np.arange(n), y]).mean()
        dz = p  # softmax - onehot, divided by the batch size
        dz[np.arange(n), y] -= 1
        dz /= n
        grads = [None] * 6
        grads[4], grads[5] = h2.T @ dz, dz.sum(0)
        dh2 = (dz @ w3.T) * (h2 > 0)
        grads[2], grads[3] = h1.T @ dh2, dh2.sum(0)
        dh1 = (dh2 @ w2.T) * (h1 > 0)
        grads[0], grads[1] = x.T @ dh1, dh1.sum(0)
        self.t += 1
        step_size = LR / (1 - BETAS[0] ** self.t)
        bias_correction2 = np.sqrt(1 - BETAS[1] ** self.t)
        for p_, g, m, v in zip(self.params, grads, self.m, self.v):  # Adam, in place, no temporaries kept
            m += (1 - BETAS[0]) * (g - m)
            v *= BETAS[1]
            v += (1 - BETAS[1]) * g * g
            denom = np.sqrt(v)
            denom /= bias_correction2
            denom += EPS
            p_ -= step_size * (m / denom)
        return float(loss)

    def accuracy(self, x, y):
        return float((self.logits(x).argmax(1) == y).mean())


def run_numpy(data, weights, orders, batch):
    (xtr, ytr), (xte, yte) = data
    model = NumpyMLP(weights)
    times = []
    for order in orders:
        start = time.perf_counter()
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            model.step(xtr[idx], ytr[idx])
        times.append(time.perf_counter() - start)
    return times, model.accuracy(xte, yte)


# ------------------------------------------------------------------ micrograd_plus
def micrograd_plus_model(weights, fused=False):
    """The course MLP in micrograd_plus from ``weights``, its loss and its Adam (``FusedAdam`` if ``fused``)."""
    from micrograd_plus import nn, optim

    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for layer, (w, b) in zip(linears, weights):
        # the library may store W as (in, out) or (out, in): copy in its layout
        layer.weight.data[...] = w if layer.weight.shape == w.shape else w.T
        layer.bias.data[...] = b
    adam = optim.Adam
    if fused:  # lab 07's optional one-pass Adam (numba)
        from micrograd_plus.fused import FusedAdam

        adam = FusedAdam
    return model, nn.CrossEntropyLoss(), adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)


def micrograd_plus_epoch(model, loss_fn, optimizer, xtr, ytr, order, batch) -> float:
    """Train one epoch over ``order`` in batches of ``batch``; return its seconds."""
    from micrograd_plus.tensor import Tensor

    start = time.perf_counter()
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        loss = loss_fn(model(Tensor(xtr[idx])), ytr[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def run_micrograd_plus(data, weights, orders, batch, fused=False):
    from micrograd_plus.memory import keep_freed_memory
    from micrograd_plus.tensor import Tensor, no_grad

    keep_freed_memory()  # measured with the allocator setting the library's training loop uses
    (xtr, ytr), (xte, yte) = data
    model, loss_fn, optimizer = micrograd_plus_model(weights, fused)
    times = []
    for order in orders:
        model.train()
        times.append(micrograd_plus_epoch(model, loss_fn, optimizer, xtr, ytr, order, batch))
    model.eval()
    with no_grad():
        acc = float((model(Tensor(xte)).data.argmax(1) == yte).mean())
    return times, acc


def run_micrograd_plus_fused(data, weights, orders, batch):
    return run_micrograd_plus(data, weights, orders, batch, fused=True)


# ------------------------------------------------------------------ torch
def run_torch(data, weights, orders, batch):
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    (xtr, ytr), (xte, yte) = data
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer, (w, b) in zip(linears, weights):
            layer.weight.copy_(torch.from_numpy(w.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    times = []
    for order in orders:
        model.train()
        order_t = torch.from_numpy(order)
        start = time.perf_counter()
        for i in range(0, len(order), batch):
            idx = order_t[i : i + batch]
            loss = loss_fn(model(xtr_t[idx]), ytr_t[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    return times, acc


ENGINES = {
    "numpy": run_numpy,
    "micrograd_plus": run_micrograd_plus,
    "micrograd_plus_fused": run_micrograd_plus_fused,
    "torch": run_torch,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("engine", choices=sorted(ENGINES))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = load_data()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    orders = batch_orders(len(data[0][1]), args.epochs, args.seed)
    times, acc = ENGINES[args.engine](data, initial_weights(args.seed), orders, args.batch)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "engine": args.engine,
                "batch": args.batch,
                "epoch_seconds": times,
                "test_accuracy": acc,
                "peak_rss_mib": peak_kib / 1024,
                "rss_after_load_mib": rss_before / 1024,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
