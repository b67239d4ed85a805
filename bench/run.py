"""`make bench`: micrograd_plus against PyTorch (CPU) and a hand-written NumPy floor.

Each engine trains the course's MNIST MLP in its own process (bench/engines.py), from the
same initial weights, in the same batch order, on the same float32 data, with the same
number of BLAS/OpenMP threads; the engines alternate, several rounds, and the figures are
medians over all measured epochs. Then the scalar engine runs micrograd's own demo
workload against karpathy's micrograd (bench/scalar.py). Nothing is installed at run time.

    python bench/run.py [--rounds 3] [--epochs 2] [--batches 64 128 256] [--threads 1 2]

Figures are per thread count (OMP/OpenBLAS/MKL threads, and torch.set_num_threads): on a
small shared machine one BLAS thread per process is often fastest for these sizes.
When numba is installed, ``micrograd_plus_fused`` runs too: the library with lab 07's optional one-pass Adam
(``micrograd_plus.fused.FusedAdam``, the same numbers); the targets are checked for both.
Targets: at every batch size and thread count, micrograd_plus's epoch within 0.9x of PyTorch's, the same
accuracy (0.5 points) and at most 0.6x its peak memory; with 1 and more threads, its speed-up from the
second thread at least PyTorch's (printed per engine). Finally bench/mnist_to_95.py prints the seconds the
course library needs to reach 95%. ``python bench/profile_mlp.py`` shows where an epoch goes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# micrograd_plus_fused: the library with lab 07's optional one-pass Adam (micrograd_plus.fused), when numba is there
FUSED = ("micrograd_plus_fused",) if importlib.util.find_spec("numba") else ()
ENGINES = ("micrograd_plus", *FUSED, "torch", "numpy")
OURS = ("micrograd_plus", *FUSED)  # the engines the targets are for


def run_engine(engine: str, batch: int, epochs: int, seed: int, env: dict) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "engines.py"),
            engine,
            "--batch",
            str(batch),
            "--epochs",
            str(epochs),
            "--seed",
            str(seed),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (accuracy is compared after these)")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--skip-scalar", action="store_true")
    parser.add_argument("--skip-to95", action="store_true")
    args = parser.parse_args(argv)
    ok = True
    figures: dict[int, dict[int, dict]] = {}
    for threads in args.threads:
        ok &= mlp_figures(args, threads, figures.setdefault(threads, {}))
    ok &= thread_speedups(figures)
    env = single_threaded()
    if not args.skip_scalar:
        ok &= subprocess.run([sys.executable, str(HERE / "scalar.py")], env=env).returncode == 0
    if not args.skip_to95:
        ok &= subprocess.run([sys.executable, str(HERE / "mnist_to_95.py")], env=env).returncode == 0
    return 0 if ok else 1


def single_threaded(threads: int = 1) -> dict:
    env = {**os.environ}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def mlp_figures(args, threads: int, figures: dict | None = None) -> bool:
    """Time the three engines at every batch size with ``threads`` threads each; True if the targets are met.

    ``figures[batch]`` receives the medians (``epoch``, ``acc``, ``mem`` per engine) for ``thread_speedups``.
    """
    env = single_threaded(threads)
    print(
        f"MNIST MLP 784-256-128-10, Adam lr=1e-3, float32, {threads} thread(s) per engine, "
        f"{args.rounds} rounds x {args.epochs} epochs per engine and batch size, engines alternating"
    )
    ok = True
    for batch in args.batches:
        results: dict[str, list[dict]] = {e: [] for e in ENGINES}
        for r in range(args.rounds):
            order = ENGINES[r % len(ENGINES) :] + ENGINES[: r % len(ENGINES)]
            for engine in order:
                results[engine].append(run_engine(engine, batch, args.epochs, seed=0, env=env))
        med = {e: statistics.median(t for run in runs for t in run["epoch_seconds"]) for e, runs in results.items()}
        acc = {e: 100 * statistics.median(run["test_accuracy"] for run in runs) for e, runs in results.items()}
        mem = {e: max(run["peak_rss_mib"] for run in runs) for e, runs in results.items()}
        for e in ENGINES:
            print(
                f"batch {batch:4d}  {e:20s} epoch {med[e]:6.2f} s   test acc {acc[e]:6.2f}%   "
                f"peak RSS {mem[e]:7.1f} MiB"
            )
        if figures is not None:
            figures[batch] = {"epoch": med, "acc": acc, "mem": mem}
        # per engine of ours: epoch / torch's, epoch / the NumPy floor's, accuracy gap, peak memory / torch's
        ratios = {
            e: (med[e] / med["torch"], med[e] / med["numpy"], abs(acc[e] - acc["torch"]), mem[e] / mem["torch"])
            for e in OURS
        }
        for ours, (vs_torch, vs_floor, acc_gap, mem_ratio) in ratios.items():
            print(
                f"batch {batch:4d}  threads {threads}  ratio {ours}/torch {vs_torch:.2f}x   "
                f"{ours}/numpy-floor {vs_floor:.2f}x   "
                f"accuracy gap {acc_gap:.2f} points   peak-memory ratio {mem_ratio:.2f}x"
            )
            # every batch size and thread count: within 0.9x of torch's epoch, same accuracy, well under its memory
            for name, met in {
                "epoch time <= 0.9x torch": vs_torch <= 0.9,
                "accuracy within 0.5 points of torch": acc_gap <= 0.5,
                "peak memory <= 0.6x torch": mem_ratio <= 0.6,
            }.items():
                print(f"target  {name:40s} {'met' if met else 'MISSED'}  ({ours}, batch {batch}, {threads} thread(s))")
                ok &= met
        if batch == 64:
            vs_torch, vs_floor, acc_gap, mem_ratio = ratios["micrograd_plus"]
            targets = {
                "epoch time <= 1.0x torch": vs_torch <= 1.0,
                "epoch time <= 1.25x numpy floor": vs_floor <= 1.25,
                "accuracy within 0.5 points of torch": acc_gap <= 0.5,
                "peak memory <= 1.5x torch": mem_ratio <= 1.5,
            }
            for name, met in targets.items():
                print(f"target  {name:40s} {'met' if met else 'MISSED'}  ({threads} thread(s))")
                ok &= met
    return ok


def thread_speedups(figures: dict[int, dict[int, dict]]) -> bool:
    """Print each engine's speed-up from 1 thread to more at every batch size; True if ours is at least torch's."""
    if 1 not in figures:
        return True
    ok = True
    for threads in sorted(t for t in figures if t > 1):
        for batch in sorted(set(figures[1]) & set(figures[threads])):
            one, many = figures[1][batch]["epoch"], figures[threads][batch]["epoch"]
            speedup = {e: one[e] / many[e] for e in ENGINES}
            print(
                f"batch {batch:4d}  speed-up 1->{threads} threads   "
                + "   ".join(f"{e} {speedup[e]:.2f}x" for e in ENGINES)
            )
            for ours in OURS:
                met = speedup[ours] >= speedup["torch"]
                name = f"speed-up 1->{threads} threads >= torch's"
                print(f"target  {name:40s} {'met' if met else 'MISSED'}  ({ours}, batch {batch})")
                ok &= met
    return ok


if __name__ == "__main__":
    sys.exit(main())
