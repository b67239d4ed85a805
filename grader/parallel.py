"""Grade many submissions at once, and split a class between several grading machines.

``make autograde LAB=... JOBS=N`` and ``make feedback JOBS=N`` run one nbgrader process
per submission, N at a time (default: the number of cores this process may use). Every
process writes its own rows of the gradebook in short transactions (a SQLite gradebook
waits for the other writers, see :mod:`grader.database`); each submission still executes
in its own bubblewrap sandbox. A progress bar runs while they work and a closing line
says how fast it went.

``SHARD=i/n`` keeps the i-th of n equal parts of the learners (sorted by id, every n-th
one), so n machines that hold the same submissions grade disjoint parts of the class
into one gradebook (``DB_URL=postgresql://...``).

>>> parse_shard("2/4")
(2, 4)
>>> shard(["a", "b", "c", "d", "e"], (1, 2)), shard(["a", "b", "c", "d", "e"], (2, 2))
(['a', 'c', 'e'], ['b', 'd'])
>>> closing_line("graded", 120, 600.0)
'graded 120 submissions in 600.0 s (12.0 per minute)'
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable


def default_jobs() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def parse_jobs(text: str | int | None) -> int:
    """``JOBS`` as given; unset: ``MICROGRAD_PLUS_JOBS`` if set, else every core."""
    if text in (None, ""):
        text = os.environ.get("MICROGRAD_PLUS_JOBS") or default_jobs()
    try:
        jobs = int(text)
    except ValueError:
        raise SystemExit(f"error: JOBS={text!r} is not a number of parallel graders (e.g. JOBS=4)") from None
    if jobs < 1:
        raise SystemExit(f"error: JOBS={jobs}: at least one grader must run")
    return jobs


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` (1 <= i <= n) -> (i, n); None or "" -> None (the whole class)."""
    if not text:
        return None
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise SystemExit(f"error: SHARD={text!r} must look like 1/4 (this machine's part / number of parts)") from None
    if not 1 <= i <= n:
        raise SystemExit(f"error: SHARD={text}: the part must be between 1 and {n}")
    return i, n


def shard(students: Iterable[str], part: tuple[int, int] | None) -> list[str]:
    """The learners of one shard: every n-th learner in sorted order, starting at the i-th."""
    ordered = sorted(students)
    if part is None:
        return ordered
    i, n = part
    return ordered[i - 1 :: n]


def closing_line(verb: str, count: int, seconds: float) -> str:
    rate = count / seconds * 60 if seconds > 0 else 0.0
    return f"{verb} {count} submissions in {seconds:.1f} s ({rate:.1f} per minute)"


@dataclass
class Result:
    item: str
    ok: bool
    lines: list[str] = field(default_factory=list)  # what to show the instructor
    seconds: float = 0.0


def run_all(items: list[str], work: Callable[[str], Result], jobs: int, description: str) -> list[Result]:
    """``work(item)`` for every item, ``jobs`` at a time, with a progress bar on stderr.

    ``work`` runs in a thread and is expected to start a process (the parallelism is in
    the processes). The lines a result carries are printed above the bar as it completes.
    """
    from tqdm import tqdm

    results: list[Result] = []
    if not items:
        return results
    with (
        tqdm(total=len(items), desc=description, unit="sub", file=sys.stderr, dynamic_ncols=True) as bar,
        ThreadPoolExecutor(max_workers=min(jobs, len(items))) as pool,
    ):
        futures = {pool.submit(_timed, work, item): item for item in items}
        for future in as_completed(futures):
            result = future.result()
            for line in result.lines:
                bar.write(line, file=sys.stdout)
            results.append(result)
            bar.update(1)
    sys.stdout.flush()
    return sorted(results, key=lambda r: r.item)


def _timed(work, item) -> Result:
    start = time.perf_counter()
    try:
        result = work(item)
    except Exception as error:  # a failure of one submission's grading must not stop the batch
        result = Result(item, False, [f"  {item}: {type(error).__name__}: {error}"])
    result.seconds = time.perf_counter() - start
    return result
