"""Autograde every submission of a lab (or of every lab) with nbgrader.

``python -m grader.autograde [--lab 01_value] [--student alice] [--only-new]``

Submissions live in ``grader/submitted/<student>/<lab>/<lab>.ipynb`` (``make collect``
puts them there). Each lab is graded with one ``nbgrader autograde <lab> --create --force``
call: students are created in the gradebook as needed, graded and locked cells are
restored from the gradebook, and each submission executes once in its own bubblewrap
sandbox (``grader/sandbox.py``: no course files, no network, resource limits, a watchdog)
under ``c.Execute.timeout`` per cell; the scores follow ``grader/verdicts.py``. A broken
submission is graded as far as it runs; one the sandbox could not execute is recorded as
"not graded: <reason>" and the batch goes on. After the batch the instructor's tree
(package, grader, configuration, virtualenv ``.pth`` files) is verified unchanged. A
summary table ends the run; the exit status is 1 when a submission could not be graded,
2 when the tree changed or the sandbox is unavailable.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import site
import sys
import time
from pathlib import Path

from grader.course import AUTOGRADED, ROOT, SUBMITTED, gradebook, in_gradebook, nbgrader, submitted_labs
from grader.hardening import read_status
from grader.release import release


def tree_digest() -> dict[str, str]:
    """sha256 of every file a submission must never change: the package, the grader, the
    configuration and the virtualenv's ``.pth`` files (which run code at interpreter start)."""
    files = [*sorted((ROOT / "micrograd_plus").rglob("*.py")), *sorted((ROOT / "grader").glob("*.py")),
             ROOT / "nbgrader_config.py", ROOT / "pyproject.toml"]
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


def autograde(lab: str | None = None, student: str | None = None, force: bool = True) -> int:
    from grader import sandbox
    try:
        sandbox.check()
    except sandbox.SandboxUnavailable as error:
        print(f"error: {error}\nnothing was graded.")
        return 2
    labs = submitted_labs(lab)
    if not labs:
        print(f"no submissions in {SUBMITTED}" + (f" for {lab}" if lab else "") + ": run `make collect` first")
        return 1
    rows, failures = [], 0
    before = tree_digest()
    for name in labs:
        if not in_gradebook(name):
            print(f"{name} is not in the gradebook yet: releasing it first")
            release(name)
        students = sorted(p.parent.name for p in SUBMITTED.glob(f"{student or '*'}/{name}") if p.is_dir())
        print(f"autograding {name}: {len(students)} submission(s)", flush=True)
        start = time.perf_counter()
        args = ["autograde", name, "--create", "--log-level=WARN"]
        args += ["--force"] if force else []
        args += [f"--student={student}"] if student else []
        os.environ["MICROGRAD_PLUS_BATCH_SIZE"] = str(len(students))  # for the progress lines
        status = nbgrader(*args)
        changed = [f for f, digest in tree_digest().items() if before.get(f) != digest]
        if changed:
            print(f"error: grading {name} changed the instructor's files: {changed[:5]}\n"
                  "The grades of this batch cannot be trusted; restore these files (git checkout) and investigate.")
            return 2
        print(f"autograded {name} in {time.perf_counter() - start:.1f} s (nbgrader exit status {status})")
        lab_rows = summary(name, students)
        failures += sum(row[2] is None for row in lab_rows)
        rows += lab_rows
    print(f"\n{'student':<24} {'lab':<16} {'score':>8} {'max':>6}")
    for who, name, score, max_score, state in rows:
        shown = "NOT GRADED" if score is None else f"{score:g}"
        print(f"{who:<24} {name:<16} {shown:>8} {max_score:>6g}" + ("" if score is not None else f"  {state}"))
    if failures:
        print(f"\n{failures} submission(s) could not be graded (reasons above); the others are graded")
    print(f"graded notebooks: {AUTOGRADED}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", help="only this lab, e.g. 01_value (default: every lab with submissions)")
    parser.add_argument("--student", help="only this student (an nbgrader glob, e.g. 'a*')")
    parser.add_argument("--create", action="store_true",
                        help="create unknown students in the gradebook (always on; kept for clarity)")
    parser.add_argument("--only-new", action="store_true",
                        help="skip submissions already graded and not resubmitted (default: regrade all)")
    args = parser.parse_args(argv)
    return autograde(args.lab, args.student, force=not args.only_new)


if __name__ == "__main__":
    sys.exit(main())
