"""Fair partial credit: blank one exercise at a time and see which graded cells lose points.

``python -m grader.partial_credit --lab 04_losses [--per cell|region] [--jobs N]``
(``make partial-credit LAB=04_losses``)

For every exercise of a lab, a *variant* of the reference solution is built with that
exercise blanked as the release blanks it (each ``### BEGIN SOLUTION`` ... ``### END
SOLUTION`` region replaced by the ``ClearSolutions.code_stub`` of
``grader/nbgrader_config.py``, indented like the region). Each variant is graded the way
``make autograde`` grades a submission: executed in the bubblewrap sandbox
(:func:`grader.sandbox.execute`, the staged package holding stubs for this lab) and every
graded cell judged by :func:`grader.verdicts.verdict` against the reference's recorded
checks. nbgrader's own bookkeeping (gradebook, restoring locked cells) is left out: the
variants start from the solution notebook, whose graded cells are already the ones
nbgrader restores.

Which exercise a graded cell tests comes from the notebook (see docs/AUTHORING.md,
"Which exercise a graded cell tests"):

- by default, the exercise whose solution cell comes last before the graded cell;
- a graded cell tagged ``exercise:<grade_id>`` (one tag per exercise) tests those
  exercises instead; ``exercise:<grade_id>#<k>`` names only the k-th solution region
  (counted from 1) of a cell that holds several.

A blank exercise may cost only the points of the graded cells that test it. The table
lists, per blanked exercise, the points it lost, and the *unfair* loss: points of graded
cells that test other exercises. The exit status is 1 when any exercise has an unfair loss
(or a blank exercise costs nothing at all: its tests cannot fail), 2 when the lab cannot
be run.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import nbformat

from grader.export import ROOT

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
TAG = "exercise:"


def code_stub() -> str:
    """The release's stub for a blanked code region (``c.ClearSolutions.code_stub`` of the course)."""
    text = (ROOT / "grader" / "nbgrader_config.py").read_text()
    match = re.search(r'c\.ClearSolutions\.code_stub\s*=\s*\{"python":\s*"(.*?)"\}', text)
    return (
        match.group(1).encode().decode("unicode_escape") if match else "# YOUR CODE HERE\nraise NotImplementedError()"
    )


def regions(source: str) -> list[tuple[int, int]]:
    """(begin line, end line) index pairs of the solution regions of a cell's source."""
    lines, found, start = source.split("\n"), [], None
    for i, line in enumerate(lines):
        if line.strip() == BEGIN:
            start = i
        elif line.strip() == END and start is not None:
            found.append((start, i))
            start = None
    return found


def blank(source: str, which: int | None = None, stub: str | None = None) -> str:
    """``source`` with solution region ``which`` (all of them when None) replaced by the stub,
    indented like the region's ``### BEGIN SOLUTION`` line, as nbgrader's ClearSolutions does.

    >>> blank("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION\\n", stub="pass")
    'def f():\\n    pass\\n'
    >>> blank("### BEGIN SOLUTION\\na = 1\\n### END SOLUTION\\n### BEGIN SOLUTION\\nb = 2\\n### END SOLUTION", 1, "b = 0")
    '### BEGIN SOLUTION\\na = 1\\n### END SOLUTION\\nb = 0'
    """  # noqa: E501
    stub = code_stub() if stub is None else stub
    lines = source.split("\n")
    for index, (begin, end) in reversed(list(enumerate(regions(source)))):
        if which is None or index == which:
            indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
            lines[begin : end + 1] = [indent + s for s in stub.split("\n")]
    return "\n".join(lines)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_exercise(cell) -> bool:
    return cell.cell_type == "code" and bool(_nbgrader(cell).get("solution")) and bool(regions(cell.source))


def is_graded_test(cell) -> bool:
    return cell.cell_type == "code" and bool(_nbgrader(cell).get("grade")) and not _nbgrader(cell).get("solution")


def exercises_tested(nb) -> dict[str, list[str]]:
    """graded cell's grade_id -> the exercises (solution cells' grade_ids) it tests (see the module docstring).

    >>> from nbformat.v4 import new_notebook, new_code_cell
    >>> sol = lambda gid: new_code_cell("### BEGIN SOLUTION\\n### END SOLUTION", metadata={"nbgrader": {"solution": True, "grade_id": gid}})
    >>> test = lambda gid, tags=(): new_code_cell("", metadata={"nbgrader": {"grade": True, "grade_id": gid, "points": 1}, "tags": list(tags)})
    >>> exercises_tested(new_notebook(cells=[sol("a"), sol("b"), test("t1"), test("t2", ["exercise:a"])]))
    {'t1': ['b'], 't2': ['a']}
    """  # noqa: E501
    exercises = {_nbgrader(c)["grade_id"] for c in nb.cells if is_exercise(c)}
    mapping, last = {}, None
    for cell in nb.cells:
        if is_exercise(cell):
            last = _nbgrader(cell)["grade_id"]
        elif is_graded_test(cell):
            grade_id = _nbgrader(cell)["grade_id"]
            tagged = [t[len(TAG) :] for t in cell.get("metadata", {}).get("tags", []) if t.startswith(TAG)]
            unknown = sorted(t for t in tagged if t.split("#", 1)[0] not in exercises)
            if unknown:
                raise ValueError(
                    f"graded cell {grade_id!r} is tagged with unknown exercise(s) {unknown}; "
                    f"the exercises are {sorted(exercises)}"
                )
            if not tagged and last is None:
                raise ValueError(f"graded cell {grade_id!r} comes before every exercise: tag it 'exercise:<grade_id>'")
            mapping[grade_id] = tagged or [last]
    return mapping


@dataclass
class Variant:
    name: str  # "dataloader" (a whole cell) or "dataloader#2" (its second region)
    exercise: str  # the solution cell's grade_id
    notebook: object
    lost: dict[str, float] = field(default_factory=dict)  # graded cell -> points lost
    unfair: dict[str, float] = field(default_factory=dict)  # the part of lost that tests other exercises
    reason: str | None = None  # why it could not be graded
    seconds: float = 0.0


def variants(nb, per: str = "region") -> list[Variant]:
    """One notebook per exercise (``per="cell"``) or per solution region (``per="region"``), blanked."""
    found = []
    for index, cell in enumerate(nb.cells):
        if not is_exercise(cell):
            continue
        grade_id, count = _nbgrader(cell)["grade_id"], len(regions(cell.source))
        for which in [None] if per == "cell" or count == 1 else range(count):
            copy_ = copy.deepcopy(nb)
            copy_.cells[index].source = blank(cell.source, which)
            name = grade_id if which is None else f"{grade_id}#{which + 1}"
            found.append(Variant(name, grade_id, copy_))
    return found


def grade(
    variant: Variant,
    lab: str,
    points: dict[str, float],
    mapping: dict[str, list[str]],
    expected: dict,
    cell_timeout: int,
) -> Variant:
    """Grade one variant as autograde does (the sandbox, then the verdicts); fills ``lost``/``unfair``."""
    from grader import sandbox, verdicts

    outcome = sandbox.execute(variant.notebook, ROOT, lab, cell_timeout, lab_files=ROOT / "solutions" / lab)
    variant.seconds = outcome.seconds
    if outcome.notebook is None:
        variant.reason = outcome.reason
        return variant
    for cell in outcome.notebook.cells:
        if verdicts.is_graded_code(cell):
            grade_id = cell.metadata.nbgrader["grade_id"]
            passed, _ = verdicts.verdict(cell, expected.get(grade_id))
            if not passed:
                variant.lost[grade_id] = points[grade_id]
                if not covers(mapping.get(grade_id, []), variant):
                    variant.unfair[grade_id] = points[grade_id]
    return variant


def run(
    lab: str, per: str = "region", jobs: int = 2, cell_timeout: int = 300, only: list[str] | None = None
) -> tuple[list[Variant], dict[str, list[str]], dict[str, float]]:
    """Grade every blanked variant of ``lab``; returns (variants, graded cell -> exercises, points)."""
    from grader import sandbox, verdicts

    sandbox.check()
    nb = nbformat.read(ROOT / "solutions" / lab / f"{lab}.ipynb", as_version=4)
    mapping = exercises_tested(nb)
    points = {_nbgrader(c)["grade_id"]: float(_nbgrader(c).get("points", 0)) for c in nb.cells if is_graded_test(c)}
    expected = verdicts.reference_records(ROOT, lab, cell_timeout)
    sandbox.staged_package(ROOT, lab)  # built once, before the variants run side by side
    todo = [v for v in variants(nb, per) if not only or v.exercise in only or v.name in only]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        done = list(pool.map(lambda v: grade(v, lab, points, mapping, expected, cell_timeout), todo))
    return done, mapping, points


def covers(exercises: list[str], variant: Variant) -> bool:
    """Does a graded cell that tests ``exercises`` test what ``variant`` blanks?

    ``"dataloader"`` covers every region of that cell; ``"dataloader#2"`` only its second
    region (and a blank of the whole cell, which blanks that region too).
    """
    return any(
        e == variant.exercise
        or e == variant.name
        or (variant.name == variant.exercise and e.split("#", 1)[0] == variant.exercise)
        for e in exercises
    )


def fair(variant: Variant) -> bool:
    """A blank exercise is graded fairly when it costs points, and only its own tests' points."""
    return variant.reason is None and bool(variant.lost) and not variant.unfair


def table(lab: str, done: list[Variant], mapping: dict[str, list[str]], points: dict[str, float]) -> str:
    total = sum(points.values())
    rows = [
        f"{lab}: {total:g} points; blank exercise -> points lost (of its own tests / of other exercises' tests)",
        f"{'blank exercise':<24} {'lost':>6} {'own':>6} {'unfair':>7}  graded cells that failed",
    ]
    for v in done:
        if v.reason:
            rows.append(f"{v.name:<24} {'-':>6} {'-':>6} {'-':>7}  NOT GRADED: {v.reason}")
            continue
        lost, unfair = sum(v.lost.values()), sum(v.unfair.values())
        own = sum(points[g] for g, ex in mapping.items() if covers(ex, v))
        cells = (
            ", ".join(f"{g}{' (UNFAIR)' if g in v.unfair else ''}" for g in v.lost) or "none (its tests cannot fail!)"
        )
        rows.append(f"{v.name:<24} {lost:>6g} {f'{lost - unfair:g}/{own:g}':>6} {unfair:>7g}  {cells}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lab", required=True, action="append", help="a lab of solutions/, e.g. 04_losses (repeat for several)"
    )
    parser.add_argument(
        "--per",
        choices=("region", "cell"),
        default="region",
        help="blank one solution region at a time (default) or one whole exercise cell",
    )
    parser.add_argument("--jobs", type=int, default=2, help="variants graded at once (default 2)")
    parser.add_argument("--only", action="append", help="only this exercise (grade_id or grade_id#k)")
    parser.add_argument("--cell-timeout", type=int, default=300)
    args = parser.parse_args(argv)
    from grader.sandbox import SandboxUnavailable

    status = 0
    for lab in args.lab:
        start = time.perf_counter()
        try:
            done, mapping, points = run(lab, args.per, args.jobs, args.cell_timeout, args.only)
        except (SandboxUnavailable, RuntimeError, ValueError, FileNotFoundError) as error:
            print(f"error: {lab}: {error}")
            return 2
        print(table(lab, done, mapping, points))
        bad = [v.name for v in done if not fair(v)]
        print(
            f"{lab}: {len(done)} blanked variant(s) graded in {time.perf_counter() - start:.0f} s; "
            + (f"UNFAIR or untested: {', '.join(bad)}" if bad else "every blank exercise costs only its own points")
        )
        print()
        status = max(status, 1 if bad else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
