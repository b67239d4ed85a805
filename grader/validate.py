"""Check a lab notebook the way the autograder will: ``make validate LAB=01_value [NB=path]``.

Runs every cell of the notebook (default: the learner's copy ``mylabs/<LAB>/<LAB>.ipynb``,
created from the release if missing, never written over) exactly as grading does: in the
same bubblewrap sandbox (``grader/sandbox.py``, the same package staging, cell timeout and
limits) with the same scoring rule (``grader/verdicts.py``: any error in a graded cell fails
it, warnings never do). It prints how many cells fail first, then each one's learner-facing
message (grader/validation_report.py), then the details with the tracebacks, and each locked
cell whose content was changed. Exit status 0 when every cell runs, every visible test
passes and no locked cell changed, 1 otherwise. Hidden tests and the recorded checks are
compared only at grading: passing here is necessary, not sufficient.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

from grader import validation_report as report
from grader.course import ROOT
from grader.mylabs import learner_notebook, sync


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
    print(
        f"validating {notebook} as lab {lab} (every cell runs in the grading sandbox; "
        "this takes as long as running the notebook)",
        flush=True,
    )
    files = ROOT / "labs" / lab if (ROOT / "labs" / lab).is_dir() else notebook.parent
    from grader.release import REFERENCE_ONLY

    outcome = sandbox.execute(
        nb, ROOT, lab, timeout, lab_files=files, submitted_files=[notebook.parent / f for f in REFERENCE_ONLY]
    )
    if outcome.notebook is None:
        print(f"\nVALIDATION FAILED for {notebook.name}: the notebook could not be run to the end: {outcome.reason}")
        return 1
    changed = [
        cell
        for cell in nb.cells
        if cell.get("metadata", {}).get("nbgrader", {}).get("locked")
        and "checksum" in cell.metadata.nbgrader
        and utils.compute_checksum(cell) != cell.metadata.nbgrader["checksum"]
    ]
    failed, crashed, graded = [], [], 0
    for number, cell in enumerate(outcome.notebook.cells, 1):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if verdicts.is_graded_code(cell):
            graded += 1
            passed, _ = verdicts.verdict(cell, None)
            if not passed:
                failed.append((number, cell, _message(errors[0]) if errors else "the test did not pass"))
        elif errors:
            crashed.append((number, cell, _message(errors[0])))
    if not (failed or crashed or changed):
        print(f"PASSED for {notebook.name}: every cell runs. {report.PASS_TEXT}")
        return 0
    print(
        f"\nVALIDATION FAILED for {notebook.name}: {len(failed)} of {graded} test cells fail, "
        f"{len(crashed)} failing cell(s) outside the tests, {len(changed)} locked cell(s) changed."
    )
    for number, cell, message in failed + crashed:
        name = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {number}"
        print(f"  - {name}: " + textwrap.indent(report.learner_message(message), "    ").strip())
    print(report.HIDDEN_NOTE)
    for cell in changed:
        print(f"\nLOCKED CELL CHANGED (the grader restores it, so your edits are lost):\n{_excerpt(cell.source)}")
    for number, cell, message in failed:
        print(
            f"\nFAILED TEST (cell {number}, {cell.metadata.nbgrader.get('points', 0)} points):\n"
            f"{_excerpt(cell.source)}\n  error:\n{_excerpt(message, 20)}"
        )
    for number, cell, message in crashed:
        print(
            f"\nFAILED CELL (cell {number}, not graded itself, but later cells may need it):\n"
            f"{_excerpt(cell.source)}\n  error:\n{_excerpt(message, 20)}"
        )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", help="lab name, e.g. 01_value")
    parser.add_argument("--notebook", type=Path, help="notebook to check (default mylabs/<LAB>/<LAB>.ipynb)")
    args = parser.parse_args(argv)
    if not (args.lab or args.notebook):
        parser.error("give --lab or --notebook")
    if not args.notebook:
        for line in sync(args.lab):  # creates the learner's copy if there is none; never writes over it
            print(line)
    notebook = args.notebook or learner_notebook(args.lab)
    return validate(notebook.resolve(), args.lab)


if __name__ == "__main__":
    sys.exit(main())
