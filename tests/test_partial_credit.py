"""Fair partial credit (grader/partial_credit.py): a blank exercise costs only its own points.

The cheap checks run on every lab: blanking reproduces the release's stubs exactly, and
every graded cell's exercises resolve. Lab 04 is blanked exercise by exercise and graded in
the sandbox here (about a minute); ``make test-partial-credit-full`` does it for every
converted lab, region by region.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from grader import partial_credit as pc

ROOT = Path(__file__).resolve().parent.parent
LABS = sorted(
    p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb") if (ROOT / "labs" / p.parent.name / p.name).exists()
)


def _solution(lab):
    return nbformat.read(ROOT / "solutions" / lab / f"{lab}.ipynb", as_version=4)


@pytest.mark.parametrize("lab", LABS)
def test_blanking_an_exercise_gives_the_release_stub(lab):
    """``blank`` is what the release (nbgrader's ClearSolutions) makes of a solution cell."""
    release = {
        c.metadata.get("nbgrader", {}).get("grade_id"): c.source
        for c in nbformat.read(ROOT / "labs" / lab / f"{lab}.ipynb", as_version=4).cells
    }
    exercises = [c for c in _solution(lab).cells if pc.is_exercise(c)]
    for cell in exercises:
        assert pc.blank(cell.source) == release[cell.metadata.nbgrader["grade_id"]]


@pytest.mark.parametrize("lab", LABS)
def test_every_graded_cell_names_exercises_that_exist(lab):
    nb = _solution(lab)
    if any(pc.is_exercise(c) for c in nb.cells):
        mapping = pc.exercises_tested(nb)
        assert set(mapping) == {c.metadata.nbgrader["grade_id"] for c in nb.cells if pc.is_graded_test(c)}


def test_a_loss_outside_the_blanked_exercise_is_unfair():
    from nbformat.v4 import new_code_cell, new_notebook

    sol = new_code_cell(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
        "def g():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION",
        metadata={"nbgrader": {"solution": True, "grade_id": "fg"}},
    )
    other = new_code_cell(
        "### BEGIN SOLUTION\nh = 3\n### END SOLUTION", metadata={"nbgrader": {"solution": True, "grade_id": "h"}}
    )
    test = new_code_cell(
        "", metadata={"nbgrader": {"grade": True, "grade_id": "test_g", "points": 2}, "tags": ["exercise:fg#2"]}
    )
    nb = new_notebook(cells=[sol, other, test])
    mapping = pc.exercises_tested(nb)
    assert mapping == {"test_g": ["fg#2"]}
    by_name = {v.name: v for v in pc.variants(nb)}
    assert set(by_name) == {"fg#1", "fg#2", "h"}
    assert "return 1" not in by_name["fg#1"].notebook.cells[0].source
    assert "return 2" in by_name["fg#1"].notebook.cells[0].source
    assert pc.covers(mapping["test_g"], by_name["fg#2"])
    assert not pc.covers(mapping["test_g"], by_name["fg#1"]) and not pc.covers(mapping["test_g"], by_name["h"])
    assert pc.covers(mapping["test_g"], pc.variants(nb, per="cell")[0])  # the whole cell blanks region 2 too
    lost = copy.copy(by_name["h"])
    lost.lost, lost.unfair = {"test_g": 2.0}, {"test_g": 2.0}
    assert not pc.fair(lost) and not pc.fair(by_name["fg#1"])  # an unfair loss; a loss of nothing
    with pytest.raises(ValueError, match="unknown exercise"):
        test.metadata["tags"] = ["exercise:nope"]
        pc.exercises_tested(nb)


@pytest.mark.slow
def test_lab_04_blank_exercises_cost_only_their_own_points():
    """Each exercise of lab 04 blanked as the release does, graded through the sandbox and the verdicts."""
    pytest.importorskip("nbclient")
    from grader import sandbox

    try:
        sandbox.check()
    except sandbox.SandboxUnavailable as error:
        pytest.fail(f"the grading sandbox is needed: {error}")
    done, mapping, points = pc.run("04_losses", per="cell", jobs=2)
    print(pc.table("04_losses", done, mapping, points))
    assert [v.name for v in done] == ["mse", "cross_entropy", "bce", "hinge"]
    assert all(pc.fair(v) for v in done), pc.table("04_losses", done, mapping, points)
    lost = {v.name: sum(v.lost.values()) for v in done}
    assert lost == {"mse": 3, "cross_entropy": 15, "bce": 5, "hinge": 4}, lost


def test_fit_trains_with_a_loader_whose_len_is_not_written():
    """Lab 06: a blank ``DataLoader.__len__`` costs the DataLoader's points, not the MNIST training."""
    import numpy as np

    from micrograd_plus import nn, optim
    from micrograd_plus.training import fit

    class Unsized:  # what a learner's DataLoader with a blank __len__ looks like to fit()
        def __init__(self, X, y):
            self.batches = [(X[i : i + 4], y[i : i + 4]) for i in range(0, len(X), 4)]

        def __iter__(self):
            return iter(self.batches)

        def __len__(self):
            raise NotImplementedError()

    X = np.array([[0.0, 1.0], [1.0, 0.0]] * 8, dtype=np.float32)
    y = np.array([0, 1] * 8)
    model = nn.Linear(2, 2, rng=0)
    history = fit(model, Unsized(X, y), nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.5), epochs=3)
    assert len(history["train_loss"]) == 3 and history["train_loss"][-1] < history["train_loss"][0]
    assert len(history["batch_loss"]) == 12
