"""Check a lab notebook the way the autograder will: ``make validate LAB=01_value [NB=path]``.

Runs every cell of the notebook (default: the learner's copy ``mylabs/<LAB>/<LAB>.ipynb``)
with nbgrader's ``Validator`` and the course configuration (the same cell timeout as
grading), then prints how many graded test cells fail, each one's message, then their
tracebacks (grader/validation_report.py), and each locked cell whose content was changed.
Exit status 0 when every visible test passes and no locked cell changed, 1 otherwise.
Hidden tests are not in the learner's notebook: passing here is necessary, not sufficient.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader import validation_report as report
from grader.course import ROOT
from grader.mylabs import learner_notebook, sync


def course_config():
    """The nbgrader configuration of the course (``nbgrader_config.py`` at the root)."""
    from traitlets.config.loader import PyFileConfigLoader
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()


def validate(notebook: Path) -> int:
    from nbgrader.validator import Validator

    if not notebook.exists():
        print(f"error: {notebook} does not exist")
        return 2
    print(f"validating {notebook} (every cell runs; this takes as long as running the notebook)", flush=True)
    results = Validator(config=course_config()).validate(str(notebook))
    print(report.text(results, notebook))
    return 0 if not results else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", help="lab name, e.g. 01_value")
    parser.add_argument("--notebook", type=Path, help="notebook to check (default: your copy, mylabs/<LAB>/<LAB>.ipynb)")
    args = parser.parse_args(argv)
    if not (args.lab or args.notebook):
        parser.error("give --lab or --notebook")
    if not args.notebook:
        for line in sync(args.lab):  # creates the learner's copy if there is none; never writes over it
            print(line)
    notebook = args.notebook or learner_notebook(args.lab)
    return validate(notebook.resolve())


if __name__ == "__main__":
    sys.exit(main())
