"""Where an epoch of the course MLP goes, per op family: ``python bench/profile_mlp.py [--threads 1 2] [--fused]``.

The model, data, batch order and optimizer are ``make bench``'s (bench/engines.py: 784-256-128-10, ReLU,
cross-entropy, Adam lr=1e-3, float32). Each (threads, batch) pair runs in its own process with that many
BLAS/OpenMP threads, and prints two tables:

* **engine**: one epoch with every ``Function.forward`` / ``backward`` and ``optimizer.step`` timed,
  summed per op family; what is left of the epoch is the engine's own Python (graph building, the backward
  pass's bookkeeping, ``zero_grad``, slicing the batch);
* **kernels**: the NumPy work of one training step timed alone at the same shapes, without any engine:
  the GEMMs, the elementwise passes, the reductions and the Adam update. Their sum is the floor under the
  epoch; the difference to the plain epoch is Python overhead.

Figures are seconds per epoch (60000 samples), the best of ``--repeats`` epochs; on a shared machine the
fractions are more telling than the absolute values. ``--cprofile N`` also prints cProfile's top N functions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

FAMILIES = {
    "LinearFunction": "GEMM + bias (Linear fwd/bwd)",
    "ReLUFunction": "elementwise (ReLU fwd/bwd)",
    "CrossEntropyFunction": "softmax + cross-entropy",
}


def build(batch: int, fused: bool = False):
    """The benchmark's model, optimizer, loss, data and one epoch's batch order (bench/engines.py's)."""
    import engines
    from micrograd_plus.memory import keep_freed_memory

    keep_freed_memory()
    (xtr, ytr), _ = engines.load_data()
    model, loss_fn, optimizer = engines.micrograd_plus_model(engines.initial_weights(0), fused)
    order = engines.batch_orders(len(ytr), 1, 0)[0]
    return model, optimizer, loss_fn, xtr, ytr, order


def epoch(model, optimizer, loss_fn, xtr, ytr, order, batch):
    import engines

    return engines.micrograd_plus_epoch(model, loss_fn, optimizer, xtr, ytr, order, batch)


def instrument(totals):
    """Wrap every Function's forward/backward and Optimizer.step with timers adding into ``totals``."""
    from micrograd_plus.autograd import Function
    from micrograd_plus.optimizers import Optimizer

    def timed(fn, key):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[key] += time.perf_counter() - start

        return wrapper

    undo = []
    classes, seen = list(Function.__subclasses__()), set()
    while classes:
        cls = classes.pop()
        if cls in seen:
            continue
        seen.add(cls)
        classes += cls.__subclasses__()
        for name in ("forward", "backward"):
            if name in cls.__dict__:
                undo.append((cls, name, cls.__dict__[name]))
                setattr(cls, name, staticmethod(timed(getattr(cls, name), (cls.__name__, name))))
    undo.append((Optimizer, "step", Optimizer.__dict__["step"]))
    Optimizer.step = timed(Optimizer.step, ("optimizer", "step"))
    return undo


def engine_table(args, model, optimizer, loss_fn, xtr, ytr, order):
    plain = min(epoch(model, optimizer, loss_fn, xtr, ytr, order, args.batch) for _ in range(args.repeats))
    totals: dict = defaultdict(float)
    undo = instrument(totals)
    best = None
    for _ in range(args.repeats):
        totals.clear()
        total = epoch(model, optimizer, loss_fn, xtr, ytr, order, args.batch)
        if best is None or total < best[0]:
            best = (total, dict(totals))
    for cls, name, original in undo:
        setattr(cls, name, original)
    total, totals = best
    families: dict = defaultdict(float)
    parts: dict = defaultdict(dict)
    for (cls, name), seconds in sorted(totals.items()):
        family = "optimizer (Adam step)" if cls == "optimizer" else FAMILIES.get(cls, f"other ({cls})")
        families[family] += seconds
        if cls != "optimizer":
            parts[family][f"{cls}.{name}"] = seconds
    families["engine + Python (graph, backward bookkeeping, batch slicing)"] = total - sum(families.values())
    print(f"engine  (plain epoch {plain:.3f} s; instrumented {total:.3f} s)")
    for family, seconds in families.items():
        print(f"  {family:62s} {seconds:7.3f} s  {100 * seconds / total:5.1f}%")
        for part, part_seconds in parts[family].items():
            print(f"      {part:58s} {part_seconds:7.3f} s  {100 * part_seconds / total:5.1f}%")
    return plain


def kernel_table(args, model, optimizer, xtr, ytr, order, plain):
    """The NumPy work of the training steps alone (no graph, no Tensor), per family, over one epoch."""
    weights = [m.weight.data for m in model if hasattr(m, "weight")]
    biases = [m.bias.data for m in model if hasattr(m, "weight")]
    steps = range(0, len(order), args.batch)
    totals: dict = defaultdict(float)

    def clock(family, fn, *a, **kw):
        start = time.perf_counter()
        out = fn(*a, **kw)
        totals[family] += time.perf_counter() - start
        return out

    params = list(model.parameters())
    grads = [np.ones_like(p.data) for p in params]
    for _ in range(args.repeats):
        for i in steps:
            x = xtr[order[i : i + args.batch]]
            y = ytr[order[i : i + args.batch]]
            acts = [x]
            for k, (w, b) in enumerate(zip(weights, biases)):
                z = clock("GEMM", np.matmul, acts[-1], w.T)
                clock("elementwise (bias add, ReLU, its backward)", np.add, z, b, z)
                if k < 2:
                    z = clock("elementwise (bias add, ReLU, its backward)", np.maximum, z, 0)
                acts.append(z)
            z = acts[-1]
            m = clock("reductions (bias grads, softmax max/sum)", z.max, axis=1, keepdims=True)
            e = clock("elementwise (softmax, cross-entropy)", np.exp, z - m)
            s = clock("reductions (bias grads, softmax max/sum)", e.sum, axis=1, keepdims=True)
            g = clock("elementwise (softmax, cross-entropy)", np.divide, e, s)
            g[np.arange(len(y)), y] -= 1
            for k in (2, 1, 0):
                clock("reductions (bias grads, softmax max/sum)", g.sum, axis=0)
                clock("GEMM", np.matmul, g.T, acts[k])
                if k:
                    g = clock("GEMM", np.matmul, g, weights[k])
                    g = clock("elementwise (bias add, ReLU, its backward)", np.multiply, g, acts[k] > 0)
            for p, grad in zip(params, grads):
                p.grad = grad
            clock("optimizer (Adam step)", optimizer.step)
    for key in totals:
        totals[key] /= args.repeats
    floor = sum(totals.values())
    totals["Python overhead (plain epoch - kernel sum)"] = plain - floor
    print(f"kernels (NumPy work alone, sum {floor:.3f} s per epoch)")
    for family, seconds in totals.items():
        print(f"  {family:62s} {seconds:7.3f} s  {100 * seconds / plain:5.1f}%")


def worker(args) -> None:
    args.threads = args.threads[0]
    model, optimizer, loss_fn, xtr, ytr, order = build(args.batch, args.fused)
    epoch(model, optimizer, loss_fn, xtr, ytr, order[: 20 * args.batch], args.batch)  # warm-up
    print(f"== batch {args.batch}, {args.threads} thread(s), {type(optimizer).__name__}")
    plain = engine_table(args, model, optimizer, loss_fn, xtr, ytr, order)
    kernel_table(args, model, optimizer, xtr, ytr, order, plain)
    if args.cprofile:
        profiler = cProfile.Profile()
        profiler.runcall(epoch, model, optimizer, loss_fn, xtr, ytr, order, args.batch)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.cprofile)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2, help="epochs timed per table (the best one is shown)")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="also print cProfile's top N")
    parser.add_argument("--fused", action="store_true", help="FusedAdam (micrograd_plus.fused, needs numba)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    for threads in args.threads:
        env = {**os.environ}
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        for batch in args.batches:
            command = [sys.executable, __file__, "--worker", "--batch", str(batch), "--threads", str(threads)]
            command += ["--repeats", str(args.repeats), "--cprofile", str(args.cprofile)] + ["--fused"] * args.fused
            subprocess.run(command, env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
