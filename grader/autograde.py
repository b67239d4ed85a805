"""Autograde every submission of a lab (or of every lab) with nbgrader, several at once.

``make autograde [LAB=01_value] [STUDENT=alice] [ONLY_NEW=1] [JOBS=N] [SHARD=i/n] [DB_URL=...]``

Submissions live in ``grader/submitted/<student>/<lab>/<lab>.ipynb`` (``make collect``
puts them there, with the submission time in ``timestamp.txt``). Each submission is
graded by its own ``nbgrader autograde <lab> --student=<id> --create --force`` process,
``JOBS`` of them at a time (default: the number of cores; :mod:`grader.parallel`), with a
progress bar and a closing line ``graded K submissions in T s (R per minute)``. nbgrader
creates the student in the gradebook, restores graded and locked cells from it, and the
submission executes once in its own bubblewrap sandbox (``grader/sandbox.py``: no course
files, no network, resource limits, a watchdog) under ``c.Execute.timeout`` per cell; the
scores follow ``grader/verdicts.py``. A broken submission is graded as far as it runs; one
the sandbox could not execute is recorded as "not graded: <reason>" and the batch goes on.

``ONLY_NEW=1`` grades only submissions that were never graded or were resubmitted since
(their ``timestamp.txt`` is newer than the graded copy's) and names every submission it
skips and why. ``SHARD=i/n`` grades the i-th of n parts of the learners
(:func:`grader.parallel.shard`), for several machines writing into one gradebook
(``DB_URL``, :mod:`grader.database`). The log shows what needs attention only
(:mod:`grader.logfilter`). After the batch the instructor's tree (package, grader,
configuration, virtualenv ``.pth`` files) is verified unchanged. A summary table ends the
run; the exit status is 1 when a submission could not be graded, 2 when the tree changed
or the sandbox is unavailable.
"""

from __future__ import annotations

import functools
import argparse
import fnmatch
import hashlib
import os
import site
import subprocess
import sys
import time
from pathlib import Path

from grader.course import AUTOGRADED, DB_URL, ROOT, SUBMITTED, env, gradebook, in_gradebook, submitted_labs
from grader.database import describe, prepare_for_parallel_writers
from grader.logfilter import LogFilter
from grader.parallel import Result, closing_line, default_jobs, parse_jobs, parse_shard, run_all, shard
from grader.hardening import read_status
from grader.release import release


def tree_digest() -> dict[str, str]:
    """sha256 of every file a submission must never change: the package, the grader, the
    configuration and the virtualenv's ``.pth`` files (which run code at interpreter start)."""
    files = [
        *sorted((ROOT / "micrograd_plus").rglob("*.py")),
        *sorted((ROOT / "grader").glob("*.py")),
        ROOT / "nbgrader_config.py",
        ROOT / "pyproject.toml",
    ]
    for folder in {*site.getsitepackages(), sys.prefix}:
        files += sorted(Path(folder).glob("*.pth"))
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else "missing" for f in files}


def summary(lab: str, students: list[str]) -> list[tuple[str, str, float | None, float, str]]:
    """(student, lab, score or None when not graded, max score, status) for the given submissions."""
    from nbgrader.api import MissingEntry

    rows, status = [], read_status(ROOT)
    with gradebook() as gb:
        max_score = gb.find_assignment(lab).max_score
        for student in students:
            graded = (AUTOGRADED / student / lab / f"{lab}.ipynb").exists()
            state = status.get(student, {}).get(lab, {}).get("status", "not graded: nbgrader failed (see its log)")
            try:
                score = gb.find_submission(lab, student).score if graded else None
            except MissingEntry:
                score = None
            if score is None or state != "graded":
                score = None
            rows.append((student, lab, score, max_score, state if score is None else "graded"))
    return rows


def submission_time(folder: Path):
    """The ``timestamp.txt`` of a submitted or graded folder as a UTC datetime (None if absent)."""
    from nbgrader.utils import parse_utc

    path = folder / "timestamp.txt"
    if not path.is_file() or not path.read_text().strip():
        return None
    try:
        return parse_utc(path.read_text().strip())
    except ValueError:
        return None


def needs_grading(lab: str, student: str) -> tuple[bool, str]:
    """For ``ONLY_NEW``: (grade it?, why) from the submitted and the graded ``timestamp.txt``."""
    graded_nb = AUTOGRADED / student / lab / f"{lab}.ipynb"
    if not graded_nb.exists():
        return True, "never graded"
    new, old = submission_time(SUBMITTED / student / lab), submission_time(AUTOGRADED / student / lab)
    if new is not None and (old is None or new > old):
        return True, f"resubmitted at {new:%Y-%m-%d %H:%M:%S} (graded copy: {old or 'no time'})"
    if new is None:
        return (
            False,
            "already graded (the submission has no timestamp.txt: collect it with `make collect` or grade it with STUDENT=...)",  # noqa: E501
        )
    return False, f"already graded, not resubmitted since {new:%Y-%m-%d %H:%M:%S}"


def submissions(lab: str, student: str | None = None) -> list[str]:
    """Learners with a notebook of ``lab`` in grader/submitted/ (an empty folder is reported, not graded)."""
    found = []
    for folder in sorted(SUBMITTED.glob(f"*/{lab}")):
        who = folder.parent.name
        if student and not fnmatch.fnmatchcase(who, student):
            continue
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            found.append(who)
        elif folder.is_dir():
            print(f"warning: {folder} holds no notebook: not graded (remove the folder or collect again)")
    return found


def grade_one(lab: str, student: str) -> Result:
    """One ``nbgrader autograde`` process for one submission; its log filtered."""
    cmd = [
        sys.executable,
        "-m",
        "nbgrader",
        "autograde",
        lab,
        f"--student={student}",
        "--create",
        "--force",
        "--log-level=WARN",
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    log = LogFilter.for_submission(ROOT, lab, student)
    lines = [f"  {student}: {log.explain(line)}" for line in log.filter(proc.stdout)]
    if proc.returncode:
        lines.append(f"  {student}: nbgrader exited with status {proc.returncode}")
    return Result(student, proc.returncode == 0, lines)


def autograde(
    lab: str | None = None,
    student: str | None = None,
    force: bool = True,
    jobs: int | None = None,
    part: tuple[int, int] | None = None,
) -> int:
    from grader import sandbox, verdicts

    try:
        sandbox.check()
    except sandbox.SandboxUnavailable as error:
        print(f"error: {error}\nnothing was graded.")
        return 2
    labs = submitted_labs(lab)
    if not labs:
        print(f"no submissions in {SUBMITTED}" + (f" for {lab}" if lab else "") + ": run `make collect` first")
        return 1
    jobs = jobs or default_jobs()
    prepare_for_parallel_writers(DB_URL)
    print(
        f"gradebook: {describe(DB_URL)}; {jobs} submission(s) at a time"
        + (f"; shard {part[0]}/{part[1]}" if part else "")
    )
    rows, failures, graded, start = [], 0, 0, time.perf_counter()
    before = tree_digest()
    for name in labs:
        if not in_gradebook(name):
            print(f"{name} is not in the gradebook yet: releasing it first")
            release(name)
        students = shard(submissions(name, student), part)
        if not force:
            chosen = []
            for who in students:
                grade, why = needs_grading(name, who)
                (chosen.append(who) if grade else None)
                print(f"  {who}: {'grading' if grade else 'skipping'}: {why}")
            students = chosen
        if not students:
            print(f"{name}: nothing to grade")
            continue
        print(f"autograding {name}: {len(students)} submission(s)", flush=True)
        # the reference's recorded checks, computed once here rather than by every worker at once
        verdicts.reference_records(ROOT, name, int(os.environ.get("MICROGRAD_PLUS_CELL_TIMEOUT", "300")))
        sandbox.staged_package(ROOT, name)  # and the staged package, shared by the workers
        lab_start = time.perf_counter()
        results = run_all(students, functools.partial(grade_one, name), jobs, f"autograde {name}")
        graded += len(results)
        changed = [f for f, digest in tree_digest().items() if before.get(f) != digest]
        if changed:
            print(
                f"error: grading {name} changed the instructor's files: {changed[:5]}\n"
                "The grades of this batch cannot be trusted; restore these files (git checkout) and investigate."
            )
            return 2
        seconds = time.perf_counter() - lab_start
        print(
            f"autograded {name}: {len(results)} submission(s) in {seconds:.1f} s "
            f"({seconds / len(results):.1f} s each, {jobs} at a time)"
        )
        lab_rows = summary(name, students)
        failures += sum(row[2] is None for row in lab_rows)
        rows += lab_rows
    if rows:
        print(f"\n{'student':<24} {'lab':<16} {'score':>8} {'max':>6}")
    for who, name, score, max_score, state in rows:
        shown = "NOT GRADED" if score is None else f"{score:g}"
        print(f"{who:<24} {name:<16} {shown:>8} {max_score:>6g}" + ("" if score is not None else f"  {state}"))
    if failures:
        print(f"\n{failures} submission(s) could not be graded (reasons above); the others are graded")
    print(f"graded notebooks: {AUTOGRADED}")
    print(closing_line("graded", graded, time.perf_counter() - start))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", help="only this lab, e.g. 01_value (default: every lab with submissions)")
    parser.add_argument("--student", help="only this student (a glob, e.g. 'a*')")
    parser.add_argument(
        "--create", action="store_true", help="create unknown students in the gradebook (always on; kept for clarity)"
    )
    parser.add_argument(
        "--only-new",
        action="store_true",
        help="grade only submissions never graded or resubmitted since (default: regrade all)",
    )
    parser.add_argument("--jobs", default=None, help="submissions graded at once (default: the number of cores)")
    parser.add_argument("--shard", default=None, help="i/n: grade the i-th of n parts of the learners")
    args = parser.parse_args(argv)
    return autograde(
        args.lab,
        args.student or None,
        force=not args.only_new,
        jobs=parse_jobs(args.jobs),
        part=parse_shard(args.shard),
    )


if __name__ == "__main__":
    sys.exit(main())
