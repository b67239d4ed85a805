"""Seconds for micrograd_plus to train the course MLP to 95% MNIST test accuracy.

The lab 06 recipe: 784-256-128-10 ReLU MLP, Adam lr=1e-3, cross-entropy, shuffled batches
(seeded). The test accuracy (official 10000 images) is measured every ``--eval-every``
batches and at the end of every epoch; the clock counts training only (evaluation time is
reported apart). Prints the seconds to reach the target, the epochs and batches it took,
the batch size, the final test accuracy and the peak memory.

    python bench/mnist_to_95.py [--batch 64] [--target 0.95] [--max-epochs 5] [--eval-every 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from micrograd_plus import nn, optim  # noqa: E402
from micrograd_plus.data import load_mnist  # noqa: E402
from micrograd_plus.tensor import Tensor  # noqa: E402
from micrograd_plus.training import DataLoader, get_memory_usage, get_peak_memory, predict  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--eval-every", type=int, default=100, help="batches between test evaluations (0: per epoch)")
    parser.add_argument("--epochs", type=int, default=2, help="train at least this many epochs (final accuracy)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    (X, y), (Xt, yt) = load_mnist()
    rss_data = get_memory_usage()
    rng = np.random.default_rng(args.seed)
    model = nn.Sequential(
        nn.Linear(784, 256, rng=rng), nn.ReLU(), nn.Linear(256, 128, rng=rng), nn.ReLU(), nn.Linear(128, 10, rng=rng)
    )
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(X, y, batch_size=args.batch, shuffle=True, seed=args.seed)

    def test_accuracy():
        return float((predict(model, Xt).argmax(1) == yt).mean())

    train_seconds = eval_seconds = 0.0
    reached = None  # (train seconds, epoch, batches) when the target was first met
    batches, acc = 0, 0.0
    epoch_seconds: list[float] = []
    for epoch in range(1, args.max_epochs + 1):
        model.train()
        start = time.perf_counter()
        for i, (xb, yb) in enumerate(loader, 1):
            loss = loss_fn(model(Tensor(xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            batches += 1
            if reached is None and args.eval_every and i % args.eval_every == 0:
                train_seconds += time.perf_counter() - start
                t = time.perf_counter()
                acc = test_accuracy()
                eval_seconds += time.perf_counter() - t
                if acc > args.target:
                    reached = (train_seconds, epoch - 1 + i / len(loader), batches)
                model.train()
                start = time.perf_counter()
        train_seconds += time.perf_counter() - start
        epoch_seconds.append(train_seconds - sum(epoch_seconds))
        t = time.perf_counter()
        acc = test_accuracy()
        eval_seconds += time.perf_counter() - t
        print(f"epoch {epoch}: test accuracy {acc:.4f}, {epoch_seconds[-1]:.1f} s of training", flush=True)
        if reached is None and acc > args.target:
            reached = (train_seconds, float(epoch), batches)
        if reached is not None and epoch >= args.epochs:
            break

    threads = os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or "default"
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, BLAS threads {threads}, "
        f"numpy {np.__version__}"
    )
    print(f"batch size: {args.batch}, Adam lr=1e-3, seed {args.seed}")
    if reached is None:
        print(f"target {args.target:.0%} NOT reached in {args.max_epochs} epochs ({train_seconds:.1f} s)")
    else:
        secs, epochs_needed, nb = reached
        print(
            f"seconds to reach {args.target:.0%} test accuracy: {secs:.1f} s of training "
            f"({epochs_needed:.2f} epochs, {nb} batches)"
        )
    print(
        f"epochs trained: {len(epoch_seconds)}, mean epoch {np.mean(epoch_seconds):.1f} s, "
        f"evaluation time (not counted) {eval_seconds:.1f} s"
    )
    print(f"final test accuracy: {acc:.4f}")
    print(
        f"memory: {rss_data:.0f} MiB after loading the data, {get_memory_usage():.0f} MiB now, "
        f"peak RSS {get_peak_memory():.0f} MiB"
    )
    return 0 if reached is not None else 1


if __name__ == "__main__":
    sys.exit(main())
