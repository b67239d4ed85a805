"""docs/INSTRUCTORS.md's table of points per lab matches the graded cells of the solutions."""

import re
from pathlib import Path

import nbformat

from grader.export import lab_notebooks

ROOT = Path(__file__).resolve().parent.parent


def notebook_points(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(
        c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
    )


def guide_points() -> dict[str, int]:
    text = (ROOT / "docs" / "INSTRUCTORS.md").read_text(encoding="utf-8")
    section = text.split("## Points per lab", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| (\d\d_\w+) \| (\d+) \|$", section, re.M)}


def test_points_table_matches_the_notebooks():
    actual = {nb.parent.name: notebook_points(nb) for nb in lab_notebooks(ROOT / "solutions")}
    assert guide_points() == actual, "update the 'Points per lab' table in docs/INSTRUCTORS.md"


def test_points_are_integers():
    for nb_path in lab_notebooks(ROOT / "solutions"):
        for c in nbformat.read(nb_path, as_version=4).cells:
            points = c.metadata.get("nbgrader", {}).get("points")
            assert points is None or float(points).is_integer(), (nb_path.name, c.metadata.nbgrader["grade_id"])


def test_graded_cells_show_no_number():
    """nbgrader reads a number shown by a graded cell as its *partial score*.

    A graded cell ending with e.g. ``check_gradient(...)`` (which returns the relative
    error) displays that number and scores it (1e-10 of 2 points), in autograding and in
    the learner's Validate alike. End such a cell with an assignment
    (``_ = check_gradient(...)``) or a semicolon. Checked on the committed outputs.
    """
    offenders = []
    for nb_path in lab_notebooks(ROOT / "solutions"):
        for c in nbformat.read(nb_path, as_version=4).cells:
            meta = c.metadata.get("nbgrader", {})
            if not (meta.get("grade") and c.cell_type == "code"):
                continue
            for out in c.get("outputs", []):
                if out.output_type == "execute_result":
                    try:
                        float(out.data.get("text/plain", ""))
                    except ValueError:
                        continue
                    offenders.append(f"{nb_path.parent.name}:{meta['grade_id']}")
    assert not offenders, f"graded cells that show a number (nbgrader scores it as partial credit): {offenders}"
