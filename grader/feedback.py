"""HTML feedback for every autograded submission, without the source of hidden tests.

``make feedback [LAB=01_value] [STUDENT=alice] [JOBS=N] [SHARD=i/n]``

Runs one ``nbgrader generate_feedback <lab> --student=<id> --force`` per graded
submission, ``JOBS`` at a time (:mod:`grader.parallel`), each writing
``grader/feedback/<student>/<lab>/<lab>.html``. The feedback preprocessors
(``grader/nbgrader_config.py``) clear hidden-test regions *and* the tracebacks that would
quote them (``grader.hardening.HideHiddenTests``). As a last check every HTML file is
searched for the lines of every hidden region; a match is reported and fails the command.
"""

from __future__ import annotations

import functools
import argparse
import fnmatch
import html
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from grader.course import AUTOGRADED, FEEDBACK, ROOT, SUBMITTED, env, gradebook
from grader.logfilter import LogFilter
from grader.parallel import Result, closing_line, default_jobs, parse_jobs, parse_shard, run_all, shard

_TAGS = re.compile(r"<[^>]+>")


def notebook_text(folder: Path) -> str:
    """All cell sources of the notebooks in ``folder``, one string (empty if there are none)."""
    return "\n".join(
        cell.source
        for notebook in sorted(folder.glob("*.ipynb"))
        for cell in nbformat.read(notebook, as_version=4).cells
    )


def hidden_lines(lab: str, min_chars: int = 6) -> set[str]:
    """Lines of the hidden-test regions of a lab's graded cells (from the gradebook) that
    the released lab does not already show (``c.backward()``, say, reveals nothing)."""
    lines = set()
    with gradebook() as gb:
        for notebook in gb.find_assignment(lab).notebooks:
            for cell in notebook.source_cells:
                inside = False
                for line in cell.source.split("\n"):
                    if "BEGIN HIDDEN TESTS" in line:
                        inside = True
                    elif "END HIDDEN TESTS" in line:
                        inside = False
                    elif inside and len(line.strip()) >= min_chars:
                        lines.add(line.strip())
    public = notebook_text(ROOT / "labs" / lab)
    return {line for line in lines if line not in public}


def leaks(page: Path, lines: set[str]) -> list[str]:
    """Hidden lines that appear in a feedback page (compared as visible text)."""
    text = html.unescape(_TAGS.sub("", page.read_text(encoding="utf-8")))
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    return sorted(line for line in lines if line in text)


def _feedback_for(lab: str, lines: set[str], student: str) -> Result:
    return feedback_one(lab, student, lines)


def feedback_one(lab: str, student: str, lines: set[str]) -> Result:
    """One ``nbgrader generate_feedback`` process, then the page's leak check."""
    cmd = [
        sys.executable,
        "-m",
        "nbgrader",
        "generate_feedback",
        lab,
        f"--student={student}",
        "--force",
        "--log-level=WARN",
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    log = LogFilter({}, {})
    shown = [f"  {student}: {line.strip()}" for line in log.filter(proc.stdout)]
    ok = proc.returncode == 0
    if not ok:
        shown.append(f"  {student}: nbgrader generate_feedback exited with status {proc.returncode}")
    # a line the learner wrote in their own submission reveals nothing
    own = notebook_text(SUBMITTED / student / lab)
    for page in sorted((FEEDBACK / student / lab).glob("*.html")):
        found = leaks(page, {line for line in lines if line not in own})
        if found:
            ok = False
            shown.append(f"error: {page} shows hidden-test source: {found[:3]}")
    return Result(student, ok, shown)


def feedback(
    lab: str | None = None, student: str | None = None, jobs: int | None = None, part: tuple[int, int] | None = None
) -> int:
    labs = sorted({p.name for p in AUTOGRADED.glob("*/*") if p.is_dir() and (not lab or p.name == lab)})
    if not labs:
        print("nothing autograded yet" + (f" for {lab}" if lab else "") + ": run `make autograde` first")
        return 1
    jobs = jobs or default_jobs()
    failed, done, start = 0, 0, time.perf_counter()
    for name in labs:
        students = shard(
            [
                p.parent.parent.name
                for p in AUTOGRADED.glob(f"*/{name}/{name}.ipynb")
                if not student or fnmatch.fnmatchcase(p.parent.parent.name, student)
            ],
            part,
        )
        if not students:
            continue
        lines = hidden_lines(name)
        results = run_all(students, functools.partial(_feedback_for, name, lines), jobs, f"feedback {name}")  # noqa: E501
        failed += sum(not r.ok for r in results)
        done += len(results)
        print(
            f"{name}: {len(list(FEEDBACK.glob(f'*/{name}/*.html')))} feedback page(s) in {FEEDBACK}/<student>/{name}/"
        )
    print(closing_line("wrote feedback for", done, time.perf_counter() - start))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab")
    parser.add_argument("--student", help="only this learner (a glob, e.g. 'a*')")
    parser.add_argument("--jobs", default=None, help="pages written at once (default: the number of cores)")
    parser.add_argument("--shard", default=None, help="i/n: the i-th of n parts of the learners")
    args = parser.parse_args(argv)
    return feedback(args.lab, args.student or None, parse_jobs(args.jobs), parse_shard(args.shard))


if __name__ == "__main__":
    sys.exit(main())
