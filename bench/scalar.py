"""The scalar engine against karpathy's micrograd on micrograd's own demo workload.

MLP(2, [16, 16, 1]) on 100 two-moons points, max-margin loss + 1e-4 L2, 100 SGD steps
with micrograd's learning-rate schedule, from the same initial weights in both engines.
Prints the time of each, the speed-up, and the final losses (they must agree to 1e-6). Both engines keep
a ``_backward`` closure per node, so both create reference cycles that Python's cycle collector must
free; the same runs are timed a second time with the collector paused (``gc.disable()``, as ``timeit``
does), which shows how much of each engine's time that collector takes.

``python bench/scalar.py --steps 20 --repeats 1`` gives a quicker, rougher figure.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def moons(n=100, noise=0.1, seed=1):
    from micrograd_plus.scalar_nn import make_moons

    return make_moons(n_samples=n, noise=noise, seed=seed)


def train(value_cls, model, X, y, steps=100):
    """micrograd's demo loop, written once for both engines (they share the Value API)."""
    loss = None
    for k in range(steps):
        inputs = [list(map(value_cls, xrow)) for xrow in X.tolist()]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * si).relu() for yi, si in zip(y.tolist(), scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        loss = data_loss + reg_loss
        model.zero_grad()
        loss.backward()
        lr = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= lr * p.grad
    return loss.data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from micrograd.engine import Value as KValue
    from micrograd.nn import MLP as KMLP
    from micrograd_plus.scalar_nn import MLP
    from micrograd_plus.value import Value

    X, y = moons()
    y = y * 2 - 1 if set(np.unique(y).tolist()) == {0, 1} else y
    times: dict[tuple[str, bool], list[float]] = {
        (name, paused): [] for name in ("micrograd", "micrograd_plus") for paused in (False, True)
    }
    losses = {}
    for _ in range(args.repeats):
        for paused in (False, True):
            random.seed(1337)
            theirs = KMLP(2, [16, 16, 1])
            ours = MLP(2, [16, 16, 1])
            for p, q in zip(ours.parameters(), theirs.parameters()):
                p.data = q.data
            for name, cls, model in (("micrograd", KValue, theirs), ("micrograd_plus", Value, ours)):
                gc.collect()
                if paused:
                    gc.disable()
                try:
                    start = time.perf_counter()
                    losses[name] = train(cls, model, X, y, steps=args.steps)
                    times[name, paused].append(time.perf_counter() - start)
                finally:
                    gc.enable()
    med = {key: statistics.median(value) for key, value in times.items()}
    t_k, t_o = med["micrograd", False], med["micrograd_plus", False]
    diff = abs(losses["micrograd"] - losses["micrograd_plus"])
    steps = f"{args.steps} steps"
    print(f"scalar  micrograd 0.1.0     {steps} {t_k:6.2f} s   final loss {losses['micrograd']:.9f}")
    print(f"scalar  micrograd_plus      {steps} {t_o:6.2f} s   final loss {losses['micrograd_plus']:.9f}")
    print(f"scalar  speed-up {t_k / t_o:.1f}x   |loss difference| {diff:.2e}")
    g_k, g_o = med["micrograd", True], med["micrograd_plus", True]
    print(
        f"scalar  cycle collector paused: micrograd {g_k:.2f} s, micrograd_plus {g_o:.2f} s, speed-up {g_k / g_o:.1f}x"
        f"  (the collector's share of the time: micrograd {1 - g_k / t_k:.0%}, micrograd_plus {1 - g_o / t_o:.0%})"
    )
    met_speed, met_loss = t_k / t_o >= 5, diff <= 1e-6
    print(f"target  {'scalar engine >= 5x micrograd':40s} {'met' if met_speed else 'MISSED'}")
    print(f"target  {'same final loss to 1e-6':40s} {'met' if met_loss else 'MISSED'}")
    return 0 if met_speed and met_loss else 1


if __name__ == "__main__":
    sys.exit(main())
