"""HTML feedback for every autograded submission, without the source of hidden tests.

``python -m grader.feedback [--lab 01_value] [--student alice]``

Runs ``nbgrader generate_feedback <lab> --force``, which writes
``grader/feedback/<student>/<lab>/<lab>.html``. The feedback preprocessors
(``grader/nbgrader_config.py``) clear hidden-test regions *and* the tracebacks that would
quote them (``grader.hardening.HideHiddenTests``). As a last check every HTML file is
searched for the lines of every hidden region; a match is reported and fails the command.
"""
from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

import nbformat

from grader.course import AUTOGRADED, FEEDBACK, ROOT, SUBMITTED, gradebook, nbgrader

_TAGS = re.compile(r"<[^>]+>")


def notebook_text(folder: Path) -> str:
    """All cell sources of the notebooks in ``folder``, one string (empty if there are none)."""
    return "\n".join(cell.source for notebook in sorted(folder.glob("*.ipynb"))
                     for cell in nbformat.read(notebook, as_version=4).cells)


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


def feedback(lab: str | None = None, student: str | None = None) -> int:
    labs = sorted({p.name for p in AUTOGRADED.glob("*/*") if p.is_dir() and (not lab or p.name == lab)})
    if not labs:
        print("nothing autograded yet" + (f" for {lab}" if lab else "") + ": run `make autograde` first")
        return 1
    failed = 0
    for name in labs:
        args = ["generate_feedback", name, "--force", "--log-level=WARN"]
        args += [f"--student={student}"] if student else []
        failed += nbgrader(*args) != 0
        lines = hidden_lines(name)
        pages = sorted(FEEDBACK.glob(f"{student or '*'}/{name}/*.html"))
        for page in pages:
            # a line the learner wrote in their own submission reveals nothing either
            own = notebook_text(SUBMITTED / page.parent.parent.name / name)
            found = leaks(page, {line for line in lines if line not in own})
            if found:
                failed += 1
                print(f"error: {page} shows hidden-test source: {found[:3]}")
        print(f"{name}: {len(pages)} feedback page(s) in {FEEDBACK}/<student>/{name}/")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab")
    parser.add_argument("--student")
    args = parser.parse_args(argv)
    return feedback(args.lab, args.student)


if __name__ == "__main__":
    sys.exit(main())
