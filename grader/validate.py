"""Check a lab notebook the way the autograder will: ``make validate LAB=01_value [NB=path]``.

Runs every cell of the notebook (default ``labs/<LAB>/<LAB>.ipynb``) with nbgrader's
``Validator`` and the course configuration (the same cell timeout as grading), then
prints each graded test cell that fails and each locked cell whose content was changed.
Exit status 0 when every visible test passes and no locked cell changed, 1 otherwise.
Hidden tests are not in the learner's notebook: passing here is necessary, not sufficient.
"""
from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

from grader.course import ROOT


def course_config():
    """The nbgrader configuration of the course (``nbgrader_config.py`` at the root)."""
    from traitlets.config.loader import PyFileConfigLoader
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()


def _excerpt(text: str, lines: int = 12) -> str:
    if not sys.stdout.isatty():
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    rows = text.strip().splitlines()
    more = [f"... ({len(rows) - lines} more lines)"] if len(rows) > lines else []
    return textwrap.indent("\n".join(rows[:lines] + more), "    ")


def validate(notebook: Path) -> int:
    from nbgrader.validator import Validator

    if not notebook.exists():
        print(f"error: {notebook} does not exist")
        return 2
    print(f"validating {notebook} (every cell runs; this takes as long as running the notebook)", flush=True)
    results = Validator(config=course_config()).validate(str(notebook))
    if not results:
        print(f"PASSED: every visible test in {notebook.name} passes. Hidden tests run at grading.")
        return 0
    for cell in results.get("type_changed", []):
        print(f"\nCHANGED CELL TYPE ({cell['old_type']} -> {cell['new_type']}); restore it:\n{_excerpt(cell['source'])}")
    for cell in results.get("changed", []):
        print(f"\nLOCKED CELL CHANGED (the grader restores it, so your edits are lost):\n{_excerpt(cell['source'])}")
    for cell in results.get("failed", []):
        print(f"\nFAILED TEST:\n{_excerpt(cell['source'])}\n  error:\n{_excerpt(cell['raw_error'], 20)}")
    counts = {k: len(v) for k, v in results.items()}
    print(f"\nVALIDATION FAILED for {notebook.name}: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()))
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", help="lab name, e.g. 01_value")
    parser.add_argument("--notebook", type=Path, help="notebook to check (default labs/<LAB>/<LAB>.ipynb)")
    args = parser.parse_args(argv)
    if not (args.lab or args.notebook):
        parser.error("give --lab or --notebook")
    notebook = args.notebook or ROOT / "labs" / args.lab / f"{args.lab}.ipynb"
    return validate(notebook.resolve())


if __name__ == "__main__":
    sys.exit(main())
