"""Check a lab notebook the way the autograder will: ``make validate LAB=01_value [NB=path]``.

Runs every cell of the notebook (default ``labs/<LAB>/<LAB>.ipynb``) exactly as grading
does: in the same bubblewrap sandbox (``grader/sandbox.py``, the same package staging,
cell timeout and limits) with the same scoring rule (``grader/verdicts.py``: any error in
a graded cell fails it, warnings never do). It prints every failing cell, graded test or
not, with its error message, and each locked cell whose content was changed. Exit status
0 when every cell runs, every visible test passes and no locked cell changed, 1 otherwise.
Hidden tests and the recorded checks are compared only at grading: passing here is
necessary, not sufficient.
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


def _lab_of(notebook: Path) -> str:
    for name in (notebook.parent.name, notebook.stem):
        if re.fullmatch(r"\d\d_[A-Za-z0-9_]+", name) and (ROOT / "labs" / name).is_dir():
            return name
    return notebook.parent.name


def _message(output) -> str:
    lines = [strip(line) for line in output.get("traceback", [])]
    tail = [line for line in "\n".join(lines).splitlines() if line.strip()][-6:]
    return "\n".join(tail) or f"{output.get('ename')}: {output.get('evalue')}"


def strip(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def validate(notebook: Path, lab: str | None = None) -> int:
    import nbformat
    from nbgrader import utils

    from grader import sandbox, verdicts
    if not notebook.exists():
        print(f"error: {notebook} does not exist")
        return 2
    try:
        sandbox.check()
    except sandbox.SandboxUnavailable as error:
        print(f"error: {error}\n'make validate' runs your notebook the way grading does, in this sandbox.")
        return 2
    lab = lab or _lab_of(notebook)
    nb = nbformat.read(notebook, as_version=4)
    timeout = int(course_config().Execute.get("timeout", 300))
    print(f"validating {notebook} as lab {lab} (every cell runs in the grading sandbox; "
          "this takes as long as running the notebook)", flush=True)
    files = ROOT / "labs" / lab if (ROOT / "labs" / lab).is_dir() else notebook.parent
    outcome = sandbox.execute(nb, ROOT, lab, timeout, lab_files=files)
    if outcome.notebook is None:
        print(f"\nVALIDATION FAILED for {notebook.name}: the notebook could not be run to the end: {outcome.reason}")
        return 1
    counts = {"changed": 0, "failed": 0, "errors": 0}
    for cell in nb.cells:
        nbg = cell.get("metadata", {}).get("nbgrader", {})
        if nbg.get("locked") and "checksum" in nbg and utils.compute_checksum(cell) != nbg["checksum"]:
            counts["changed"] += 1
            print(f"\nLOCKED CELL CHANGED (the grader restores it, so your edits are lost):\n{_excerpt(cell.source)}")
    for number, cell in enumerate(outcome.notebook.cells, 1):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if verdicts.is_graded_code(cell):
            passed, _ = verdicts.verdict(cell, None)
            if not passed:
                counts["failed"] += 1
                print(f"\nFAILED TEST (cell {number}, {cell.metadata.nbgrader.get('points', 0)} points):\n"
                      f"{_excerpt(cell.source)}\n  error:\n{_excerpt(_message(errors[0]), 20)}")
        elif errors:
            counts["errors"] += 1
            print(f"\nFAILED CELL (cell {number}, not graded itself, but later cells may need it):\n"
                  f"{_excerpt(cell.source)}\n  error:\n{_excerpt(_message(errors[0]), 20)}")
    if not any(counts.values()):
        print(f"PASSED: every cell of {notebook.name} runs and every visible test passes. Hidden tests run at grading.")
        return 0
    print(f"\nVALIDATION FAILED for {notebook.name}: {counts['failed']} failed test(s), "
          f"{counts['errors']} failing cell(s) outside the tests, {counts['changed']} locked cell(s) changed")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", help="lab name, e.g. 01_value")
    parser.add_argument("--notebook", type=Path, help="notebook to check (default labs/<LAB>/<LAB>.ipynb)")
    args = parser.parse_args(argv)
    if not (args.lab or args.notebook):
        parser.error("give --lab or --notebook")
    notebook = args.notebook or ROOT / "labs" / args.lab / f"{args.lab}.ipynb"
    return validate(notebook.resolve(), args.lab)


if __name__ == "__main__":
    sys.exit(main())
