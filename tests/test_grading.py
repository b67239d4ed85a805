"""The grading workflow, proven with real nbgrader runs in a temporary course directory.

Every submission runs in the bubblewrap sandbox (grader/sandbox.py); the hostile
submissions of the issue's attack classes are in tests/test_grading_attacks.py.

For every lab of ``tests/grading_cases.py`` that exists in solutions/ (and the suite's
own ``00_toy``), the reference solution, the blank release and broken or hostile
submissions are autograded in one nbgrader call per lab, and the score of every graded
cell is compared with what the case table says it must be. Each lab is one test item with
its own course directory and gradebook, so ``pytest -n 2`` grades two labs at a time;
the item checks everything about its lab and reports every failed check together.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.release import HANDED_IN, REFERENCE_ONLY
from tests.grading_cases import CASES, LabCase, toy_lab

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PRESENT: list[LabCase] = [
    c for c in CASES if c.lab == "00_toy" or (ROOT / "solutions" / c.lab / f"{c.lab}.ipynb").exists()
]
if os.environ.get("GRADING_LABS"):  # e.g. GRADING_LABS=00_toy,03_layers while working on one lab
    PRESENT = [c for c in PRESENT if c.lab in os.environ["GRADING_LABS"].split(",")]
TOY_CONFIG = """
# tests only: the suite's 00_toy lab has its own test helper module
c.GuardTestHelpers.package_helpers = {"micrograd_plus.gradcheck": ["check_gradient", "numerical_gradient"],
                                      "toycheck": ["check_gradient"]}
"""


# ---------------------------------------------------------------- the temporary course
def make_course(dest: Path, labs: list[str]) -> Path:
    """A course directory: nbgrader config, grader/*.py, the package, and the given labs."""
    (dest / "grader").mkdir(parents=True)
    for f in (ROOT / "grader").glob("*.py"):
        shutil.copy2(f, dest / "grader" / f.name)
    with (dest / "grader" / "nbgrader_config.py").open("a") as config:
        config.write(TOY_CONFIG)
    for name in ("nbgrader_config.py", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "micrograd_plus", dest / "micrograd_plus", ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "data").symlink_to(ROOT / "data")
    for lab in labs:
        if lab == "00_toy":
            nb, files = toy_lab()
            (dest / "solutions" / lab).mkdir(parents=True)
            nbformat.write(nb, dest / "solutions" / lab / f"{lab}.ipynb")
            for name, text in files.items():
                (dest / "solutions" / lab / name).write_text(text)
        else:
            shutil.copytree(
                ROOT / "solutions" / lab,
                dest / "solutions" / lab,
                # a learner's files (lab 10's weights) that a run of the notebook left here are not the course's
                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", *HANDED_IN),
            )
    return dest


def course_env(course: Path, timeout: int | None = None) -> dict[str, str]:
    env = dict(os.environ, MICROGRAD_PLUS_COURSE_ROOT=str(course), PYTHONPATH=str(course), MPLBACKEND="Agg")
    # the suite grades two labs at once (pytest -n 2): one submission at a time per lab, as its cell timeouts assume
    env.setdefault("MICROGRAD_PLUS_JOBS", "1")
    if timeout:
        env["MICROGRAD_PLUS_CELL_TIMEOUT"] = str(timeout)
    return env


def grader(course: Path, module: str, *args: str, timeout: int | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", f"grader.{module}", *args],
        cwd=course,
        env=course_env(course, timeout),
        capture_output=True,
        text=True,
    )
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


# ---------------------------------------------------------------- submissions
def graded_cells(nb) -> dict[str, int]:
    """grade_id -> points the autograder gives the graded cells, in notebook order.

    A manually graded answer (a graded solution cell) scores 0 until the instructor grades it."""
    return {
        c.metadata.nbgrader["grade_id"]: 0
        if c.metadata.nbgrader.get("solution")
        else c.metadata.nbgrader.get("points", 0)
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }


def manual_cells(nb) -> set[str]:
    """grade_ids of the answer cells an instructor grades by hand (graded and solution): 0 at autograde."""
    return {
        c.metadata.nbgrader["grade_id"]
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade") and c.metadata.nbgrader.get("solution")
    }


def cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def substitute(nb, old: str, new: str):
    hits = [
        c
        for c in nb.cells
        if c.cell_type == "code" and old in c.source and c.metadata.get("nbgrader", {}).get("solution")
    ]
    assert hits, f"the case table's substitution {old!r} matches no solution cell"
    hits[0].source = hits[0].source.replace(old, new, 1)
    return nb


def prepend_to_function(nb, function: str, line: str):
    pattern = re.compile(rf"^(?P<indent>[ \t]*)def {re.escape(function)}\(.*?\):[^\n]*\n", re.M | re.S)
    for c in nb.cells:
        m = pattern.search(c.source) if c.cell_type == "code" else None
        if m:
            following = c.source[m.end() :]
            body = following[: len(following) - len(following.lstrip(" \t"))] or m.group("indent") + "    "
            c.source = c.source[: m.end()] + f"{body}{line}\n" + c.source[m.end() :]
            return nb
    raise AssertionError(f"no 'def {function}(' in the notebook")


def submission(case: LabCase, kind: str, course: Path):
    """The notebook of one kind of submission (see tests/grading_cases.py)."""
    lab = case.lab
    release = nbformat.read(course / "labs" / lab / f"{lab}.ipynb", as_version=4)
    # a learner's notebook: the release with every solution cell filled in from the reference
    nb = nbformat.read(course / "labs" / lab / f"{lab}.ipynb", as_version=4)
    reference = {
        c.metadata.nbgrader["grade_id"]: c.source
        for c in nbformat.read(course / "solutions" / lab / f"{lab}.ipynb", as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("solution"):
            c.source = reference[c.metadata.nbgrader["grade_id"]]
    if kind.startswith("alt_"):  # a correct submission in another style: its own solution cells
        from tests.alternative_submissions import ALTERNATIVES

        for grade_id, source in ALTERNATIVES[lab][kind[len("alt_") :]].items():
            cell(nb, grade_id).source = source
        return nb
    if kind == "blank":
        return release
    if kind == "pass_cell":
        cell(release, case.blank_cell).source = "pass"
        return release
    if kind == "import_reference":
        for c in release.cells:
            if c.metadata.get("nbgrader", {}).get("solution"):
                c.source = f"from {case.reference_module} import *  # noqa: F403"
        return release
    if kind == "deleted":
        nb.cells.remove(cell(nb, case.delete_cell))
    elif kind == "loop":
        prepend_to_function(nb, case.loop_function, "while True: pass")
    elif kind == "exit":
        prepend_to_function(nb, case.loop_function, "import sys; sys.exit(0)")
    elif kind == "os_exit":
        prepend_to_function(nb, case.loop_function, "import os; os._exit(0)")
    elif kind == "import_error":
        first = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
        first.source = 'raise RuntimeError("broken at import")\n' + first.source
    elif kind == "hidden":
        substitute(nb, *case.hidden_bug)
    elif kind == "allclose":
        substitute(nb, *case.allclose_bug)  # type: ignore[misc]
        attack = "import numpy\nnumpy.allclose = lambda *a, **k: True\n"
        first = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
        first.source = attack + first.source
    elif kind == "gradcheck":
        substitute(nb, *case.gradcheck_bug)  # type: ignore[misc]
        attack = (
            f"import numpy, {case.gradcheck_module} as _gc\n"
            + "".join(f"_gc.{name} = lambda *a, **k: True\n{name} = _gc.{name}\n" for name in case.gradcheck_names)
            + "numpy.allclose = lambda *a, **k: True\n"
        )
        if case.gradcheck_cell:
            target = next(c for c in nb.cells if c.cell_type == "code" and case.gradcheck_cell in c.source)
        else:
            target = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")][-1]
        target.source += "\n" + attack
    return nb


def expected(case: LabCase, kind: str, points: dict[str, int]) -> dict[str, int] | None:
    """grade_id -> expected score (None: only the total is checked)."""
    zero = {
        "deleted": (case.delete_cell,),
        "loop": case.loop_cells,
        "exit": case.loop_cells,
        "hidden": case.hidden_cells,
        "allclose": case.allclose_cells,
        "gradcheck": case.gradcheck_cells,
    }
    if kind == "reference" or kind.startswith("alt_"):
        return {g: 0 if g in case.full_run_cells else p for g, p in points.items()}
    if kind in zero:
        return {g: 0 if g in zero[kind] or g in case.full_run_cells else p for g, p in points.items()}
    if kind == "os_exit":
        order = list(points)
        first = min(order.index(g) for g in case.loop_cells)
        return {g: (p if i < first else 0) for i, (g, p) in enumerate(points.items())}
    return None


def scores(course: Path, lab: str, student: str) -> tuple[float, dict[str, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'grader' / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(lab, lab, student)
        return sub.score, {g.name: g.score for g in sub.grades}


def autograde_all(case: LabCase, course: Path) -> tuple[dict[str, tuple], float]:
    """Autograde every kind of submission of the lab (one nbgrader call): kind -> scores, seconds."""
    for kind in case.runs():
        path = course / "grader" / "submitted" / kind / case.lab / f"{case.lab}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(submission(case, kind, course), path)
        for file in REFERENCE_ONLY:  # lab 10's short_run.json: the submissions train only the short run
            if (course / "solutions" / case.lab / file).is_file():
                shutil.copy2(course / "solutions" / case.lab / file, path.parent / file)
    start = time.perf_counter()
    proc = grader(course, "autograde", "--lab", case.lab, timeout=case.timeout)
    seconds = time.perf_counter() - start
    assert "NOT GRADED" not in proc.stdout, proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {kind: scores(course, case.lab, kind) for kind in case.runs()}, seconds


def check_scores(course: Path, graded, case: LabCase, kind: str):
    points = graded_cells(nbformat.read(course / "solutions" / case.lab / f"{case.lab}.ipynb", as_version=4))
    total, per_cell = graded[kind]
    print(f"{case.lab} {kind}: {total:g} / {sum(points.values())} {per_cell}")
    want = expected(case, kind, points)
    if want is not None:
        assert per_cell == want, f"got {per_cell}, expected {want}"
        assert total == sum(want.values())
    elif kind in ("blank", "pass_cell", "import_reference"):
        assert total == case.blank_score
        if kind == "pass_cell":
            assert per_cell[case.blank_cell] == 0
            graded_nb = nbformat.read(course / "grader" / "autograded" / kind / case.lab / f"{case.lab}.ipynb", 4)
            assert cell(graded_nb, case.blank_cell).source.strip() != "pass", "the graded cell was not restored"
    elif kind == "import_error":
        nb = nbformat.read(course / "solutions" / case.lab / f"{case.lab}.ipynb", as_version=4)
        first_solution = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution"))
        first_test = next(
            c.metadata.nbgrader["grade_id"]
            for c in nb.cells[first_solution:]
            if c.metadata.get("nbgrader", {}).get("grade")
        )
        assert per_cell[first_test] == 0
        assert total < sum(points.values())


def run_unguarded(course: Path, case: LabCase, nb) -> dict[str, bool]:
    """Execute a notebook without the grader's guards: grade_id -> passed."""
    from nbclient import NotebookClient

    NotebookClient(
        nb,
        timeout=case.timeout * 4,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(course / "labs" / case.lab)}},
    ).execute(env=course_env(course))
    return {g: not any(o.output_type == "error" for o in cell(nb, g).outputs) for g in graded_cells(nb)}


def check_the_attacks_are_real(course: Path, case: LabCase):
    """Without the guards, the monkeypatching submissions would pass the cells they attack."""
    for kind, cells in (("allclose", case.allclose_cells), ("gradcheck", case.gradcheck_cells)):
        if kind not in case.runs():
            continue
        passed = run_unguarded(course, case, submission(case, kind, course))
        assert any(passed[g] for g in cells), f"{kind}: the attack does not work even unguarded: {passed}"


def check_hidden_bug_passes_validate(course: Path, case: LabCase):
    path = course / "labs" / case.lab / "hidden_check.ipynb"
    nbformat.write(submission(case, "hidden", course), path)
    handed_in = [
        course / "solutions" / case.lab / f for f in REFERENCE_ONLY if (course / "solutions" / case.lab / f).is_file()
    ]
    for file in handed_in:  # the learner's files next to the notebook (lab 10's trained weights)
        shutil.copy2(file, path.parent / file.name)
    try:
        proc = grader(course, "validate", "--notebook", str(path), timeout=case.timeout * 4)
    finally:
        path.unlink()
        for file in handed_in:
            (path.parent / file.name).unlink()
    assert proc.returncode == 0, proc.stdout
    assert "PASSED" in proc.stdout


def check_validate_reports_failures_and_changed_cells(course: Path, case: LabCase):
    blank = grader(course, "validate", "--lab", case.lab, timeout=case.timeout * 4)
    assert blank.returncode == 1 and "FAILED TEST" in blank.stdout and "VALIDATION FAILED" in blank.stdout
    path = course / "labs" / case.lab / "changed_check.ipynb"
    nbformat.write(submission(case, "pass_cell", course), path)
    try:
        changed = grader(course, "validate", "--notebook", str(path), timeout=case.timeout * 4)
    finally:
        path.unlink()
    assert changed.returncode == 1 and "LOCKED CELL CHANGED" in changed.stdout
    # an ungraded cell that crashes fails validation too, with its message, although every test passes
    nb = submission(case, "reference", course)
    nb.cells.insert(
        len(nb.cells) - 1, nbformat.v4.new_code_cell("def depth(n):\n    return 1 + depth(n - 1)\ndepth(5)")
    )
    nbformat.write(nb, path)
    try:
        crashed = grader(course, "validate", "--notebook", str(path), timeout=case.timeout * 4)
    finally:
        path.unlink()
    assert crashed.returncode == 1 and "FAILED CELL" in crashed.stdout and "RecursionError" in crashed.stdout
    assert "FAILED TEST" not in crashed.stdout, crashed.stdout


def check_regrading_gives_the_same_grades(course: Path, graded, case: LabCase):
    """Autograde again (every toy submission, the reference of the other labs): same scores."""
    students = case.runs() if case.lab == "00_toy" else ("reference",)
    start = time.perf_counter()
    args = ["--lab", case.lab] + ([] if case.lab == "00_toy" else ["--student", "reference"])
    assert grader(course, "autograde", *args, timeout=case.timeout).returncode == 0
    if case.lab != "00_toy":
        print(f"\nautograding the reference submission of {case.lab}: {time.perf_counter() - start:.1f} s")
    for kind in students:
        assert scores(course, case.lab, kind) == graded[kind], kind


def check_grade_sheet_has_a_row_per_student(course: Path, graded, case: LabCase):
    import csv

    assert grader(course, "grades").returncode == 0
    rows = list(csv.DictReader((course / "grader" / "grades.csv").open()))
    assert {(r["student"], r["lab"]) for r in rows} == {(kind, case.lab) for kind in case.runs()}
    for kind in case.runs():
        row = next(r for r in rows if r["student"] == kind and r["lab"] == case.lab)
        assert float(row["score"]) == graded[kind][0]
        assert float(row["max_score"]) > 0
    solution = nbformat.read(course / "solutions" / case.lab / f"{case.lab}.ipynb", as_version=4)
    if manual_cells(solution):
        row = next(r for r in rows if r["student"] == "reference" and r["lab"] == case.lab)
        assert row["status"] == "needs manual grading", row


# ---------------------------------------------------------------- feedback
def hidden_source_lines(nb) -> set[str]:
    lines, inside = set(), False
    for c in nb.cells:
        for line in c.source.split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) >= 6:
                lines.add(line.strip())
    return lines


def visible_text(page: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def check_feedback_shows_no_hidden_test_source(course: Path, case: LabCase):
    proc = grader(course, "feedback")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hidden = hidden_source_lines(nbformat.read(course / "solutions" / case.lab / f"{case.lab}.ipynb", 4))
    assert hidden, f"{case.lab} has no hidden tests"
    # lines the learner already has (the released lab, their own submission) reveal nothing
    released = "\n".join(c.source for c in nbformat.read(course / "labs" / case.lab / f"{case.lab}.ipynb", 4).cells)
    hidden = {line for line in hidden if line not in released}
    for kind in case.runs():
        page = course / "grader" / "feedback" / kind / case.lab / f"{case.lab}.html"
        assert page.exists(), page
        text = visible_text(page.read_text())
        own = nbformat.read(course / "grader" / "submitted" / kind / case.lab / f"{case.lab}.ipynb", 4)
        own_text = "\n".join(c.source for c in own.cells)
        secret = {line for line in hidden if line not in own_text}
        assert not [line for line in secret if line in text], kind
    if "hidden" in case.runs():  # the failing hidden test still tells the learner what failed
        text = visible_text((course / "grader" / "feedback" / "hidden" / case.lab / f"{case.lab}.html").read_text())
        assert "AssertionError" in text


def check_plain_clear_hidden_tests_would_leak_through_the_traceback(course: Path, case: LabCase):
    """The reason for HideHiddenTests: nbgrader's ClearHiddenTests leaves the traceback."""
    from nbconvert import HTMLExporter
    from nbgrader.preprocessors import ClearHiddenTests

    nb = nbformat.read(course / "grader" / "autograded" / "hidden" / case.lab / f"{case.lab}.ipynb", 4)
    hidden = hidden_source_lines(nb)
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    page, _ = HTMLExporter().from_notebook_node(nb)
    assert [line for line in hidden if line in visible_text(page)]


# ---------------------------------------------------------------- one item per lab
# the slowest labs first (the case timeout is a fair proxy), so that two workers finish together
SLOWEST_FIRST = sorted(PRESENT, key=lambda c: -c.timeout)


@pytest.mark.parametrize("case", SLOWEST_FIRST, ids=lambda c: c.lab)
def test_lab(case, tmp_path):
    """Release, autograde every kind of submission, regrade, grade sheet and feedback of one lab."""
    course = make_course(tmp_path / "course", [case.lab])
    proc = grader(course, "release")
    assert proc.returncode == 0, proc.stderr
    graded, seconds = autograde_all(case, course)
    print(f"\n{case.lab}: autograding {len(graded)} submissions took {seconds:.1f} s")
    checks = [(f"scores of {kind}", check_scores, (course, graded, case, kind)) for kind in case.runs()]
    if {"allclose", "gradcheck"} & set(case.runs()):
        checks.append(("the attacks are real", check_the_attacks_are_real, (course, case)))
    if "hidden" in case.runs():
        checks.append(("the hidden bug passes validate", check_hidden_bug_passes_validate, (course, case)))
    checks += [
        ("regrading gives the same grades", check_regrading_gives_the_same_grades, (course, graded, case)),
        ("grade sheet", check_grade_sheet_has_a_row_per_student, (course, graded, case)),
        ("feedback", check_feedback_shows_no_hidden_test_source, (course, case)),
    ]
    if case.lab == "00_toy":  # cheap there; the same code serves every lab
        checks += [
            ("validate", check_validate_reports_failures_and_changed_cells, (course, case)),
            (
                "plain ClearHiddenTests leaks",
                check_plain_clear_hidden_tests_would_leak_through_the_traceback,
                (course, case),
            ),
        ]
    failures = []
    for name, check, args in checks:
        try:
            check(*args)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, f"{case.lab}:\n" + "\n".join(failures)


# ---------------------------------------------------------------- collect
def test_collect_an_lms_download(tmp_path):
    course = make_course(tmp_path / "course", [])
    nb = nbformat.v4.new_notebook()
    archive = tmp_path / "downloads.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in (
            "alice_00_toy.ipynb",
            "smithjohn_12345_678910_00_toy-1.ipynb",
            "bob_late_00_toy.ipynb",
            "carol_01_value.ipynb",
            "notes.txt",
        ):
            z.writestr(name, nbformat.writes(nb))
    proc = grader(course, "collect", "--zip", str(archive), "--lab", "00_toy")
    assert proc.returncode == 1, "files were skipped: " + proc.stdout + proc.stderr
    got = sorted(
        str(p.relative_to(course / "grader" / "submitted")) for p in (course / "grader" / "submitted").rglob("*.ipynb")
    )
    assert got == ["alice/00_toy/00_toy.ipynb", "bob/00_toy/00_toy.ipynb", "smithjohn/00_toy/00_toy.ipynb"]
    assert "SKIPPED carol_01_value.ipynb: a notebook of 01_value, not of 00_toy" in proc.stdout
    assert "SKIPPED notes.txt: not a notebook" in proc.stdout
