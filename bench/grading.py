"""`make bench-grading`: how long autograding takes, per lab and with several submissions at once.

In a temporary copy of the course (the grader suite's ``make_course``), every lab is released
and graded the way ``make autograde`` grades a class: correct submissions (the release with the
reference solution filled in) under ``grader/submitted/``, one ``python -m grader.autograde``
call per lab, each submission in its own sandbox. It prints

- per lab: wall seconds per submission with one job (nbgrader's own start-up included), which is
  also the CPU a submission costs, since one job keeps one core busy;
- for one lab: throughput with ``--jobs 1`` and ``--jobs N`` on the same submissions;
- the wall time to expect for a class: learners x seconds per submission / cores.

    python bench/grading.py [--labs 01_value 04_losses ...] [--per-lab 1] [--throughput-lab 04_losses]
                            [--submissions 4] [--jobs 1 2] [--learners 200]

Lab 10's handed-in weights are not provided, so its accuracy cell fails fast there: its time is
a lower bound by the few seconds that evaluation takes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from grader.release import REFERENCE_ONLY  # noqa: E402
from tests.grading_cases import CASES  # noqa: E402
from tests.test_grading import course_env, make_course, submission  # noqa: E402

LABS = [c.lab for c in CASES if c.lab != "00_toy" and (ROOT / "solutions" / c.lab / f"{c.lab}.ipynb").exists()]


def call(course: Path, *args: str, jobs: int = 1) -> float:
    """Run ``python -m grader.<args>`` in ``course``; return its wall seconds (raise if it failed)."""
    env = course_env(course)
    env["MICROGRAD_PLUS_JOBS"] = str(jobs)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], cwd=course, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or "NOT GRADED" in proc.stdout:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def hand_in(course: Path, lab: str, learners: list[str]) -> None:
    """Correct submissions of ``lab`` by ``learners`` under grader/submitted/ (a fresh folder each time)."""
    case = next(c for c in CASES if c.lab == lab)
    nb = submission(case, "reference", course)
    for learner in learners:
        folder = course / "grader" / "submitted" / learner / lab
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{lab}.ipynb")
        for file in REFERENCE_ONLY:  # lab 10's short run: the submission trains what the reference trains
            if (course / "solutions" / lab / file).is_file():
                shutil.copy2(course / "solutions" / lab / file, folder / file)


def autograde(course: Path, lab: str, jobs: int) -> float:
    return call(course, "grader.autograde", "--lab", lab, "--jobs", str(jobs), jobs=jobs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labs", nargs="+", default=LABS, help="labs timed one submission at a time")
    parser.add_argument("--per-lab", type=int, default=1, help="submissions per lab for the per-lab times")
    parser.add_argument("--throughput-lab", default="04_losses")
    parser.add_argument("--submissions", type=int, default=4, help="submissions for the throughput figures")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--learners", type=int, default=200, help="class size for the extrapolation")
    args = parser.parse_args(argv)

    labs = list(dict.fromkeys(args.labs + [args.throughput_lab]))
    with tempfile.TemporaryDirectory() as tmp:
        course = make_course(Path(tmp) / "course", labs)
        for lab in labs:
            call(course, "grader.release", "--lab", lab)

        per_submission: dict[str, float] = {}
        print(f"autograde, one job, {args.per_lab} correct submission(s) per lab ({os.cpu_count()} cores here)")
        for lab in args.labs:
            learners = [f"learner{k:03d}" for k in range(args.per_lab)]
            hand_in(course, lab, learners)
            per_submission[lab] = autograde(course, lab, 1) / len(learners)
            print(f"  {lab:16s} {per_submission[lab]:7.1f} s per submission", flush=True)
        total = sum(per_submission.values())
        print(f"  {'all of these':16s} {total:7.1f} s per learner")

        lab, n = args.throughput_lab, args.submissions
        learners = [f"class{k:03d}" for k in range(n)]
        hand_in(course, lab, learners)
        print(f"throughput, {lab}, {n} submissions")
        for jobs in args.jobs:
            seconds = autograde(course, lab, jobs)
            print(f"  --jobs {jobs}: {seconds:6.1f} s, {60 * n / seconds:5.1f} submissions per minute", flush=True)

        print(f"a class of {args.learners} learners, every lab above ({total:.0f} s of CPU per learner)")
        for machines, cores in ((1, 16), (4, 16)):
            minutes = args.learners * total / (machines * cores) / 60
            print(f"  {machines} machine(s) x {cores} cores: about {minutes:.0f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
