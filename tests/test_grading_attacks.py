"""Hostile submissions against the grading workflow, one case per attack class.

Every case is a submission of the suite's ``00_toy`` lab (tests/grading_cases.py) graded in
one batch between two honest learners. For each case the suite asserts that the attacker
earns at most what the same code earns without the attack (its ``honest`` twin), that the
honest learners graded before and after it get full marks, that the instructor's tree
(package, grader, configuration, gradebook of others, virtualenv ``.pth``) is unchanged,
that the batch completes, and that the feedback shows no hidden-test source.

``make test`` runs the representative cases (``REPRESENTATIVE``); ``make test-grader-full``
(``GRADING_FULL=1``) runs them all.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests.grading_cases import CASES
from tests.test_grading import grader, hidden_source_lines, make_course, scores, submission, visible_text

pytestmark = pytest.mark.slow
TOY = next(c for c in CASES if c.lab == "00_toy")
LAB = "00_toy"
FULL = 8


@dataclass(frozen=True)
class Attack:
    name: str
    code: str  # prepended to the first solution cell ({course} = the course folder)
    base: str = "blank"  # the code under attack: "blank" (the release) or "wrong" (a buggy cube)
    not_graded: bool = False  # the sandbox cannot execute it: recorded as "not graded: <reason>"
    after: str | None = None  # append the code to the cell defining this function instead


TRANSFORMER = """
def _wrap(lines):
    return ["try:\\n"] + ["    " + l for l in lines] + ["\\nexcept BaseException:\\n    pass\\n"]
get_ipython().input_transformers_post.append(_wrap)
"""
CALLBACK = """
def _forge(info):
    from IPython.display import display
    get_ipython().displayhook(1.0)
    display({"text/plain": "1.0"}, raw=True)
get_ipython().events.register("pre_run_cell", _forge)
"""
RIGGED = """
class Anything(float):
    __eq__ = lambda self, other: True
    __ne__ = lambda self, other: False
    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    __bool__ = lambda self: True
    __abs__ = lambda self: Anything(0.0)
    __sub__ = __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = lambda self, o: Anything(0.0)
_cube = lambda x: x ** 3 + x
def cube(x):
    return Anything(_cube(x))
"""
NUMPY_PATCH = """
import sys, types, numpy
from numpy._core import numeric
numeric.allclose.__code__ = (lambda a, b, rtol=1e-05, atol=1e-08, equal_nan=False: True).__code__
numpy.allclose = numeric.allclose
fake = types.ModuleType("toycheck")
fake.check_gradient = lambda *a, **k: True
class _Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "toycheck":
            from importlib.machinery import ModuleSpec
            class _L:
                def create_module(self, spec): return fake
                def exec_module(self, m): pass
            return ModuleSpec(name, _L())
sys.meta_path.insert(0, _Finder())
sys.modules["toycheck"] = fake
"""
REWRITE = """
import os, glob
for path in glob.glob("{course}/micrograd_plus/*.py") + glob.glob("/grading/pkg/micrograd_plus/*.py"):
    try:
        open(path, "a").write("\\nraise SystemExit('sabotaged')\\n")
    except OSError as e:
        print("cannot write", path, type(e).__name__)
"""
DETACHED = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(4)
        for path in ("{course}/grader/gradebook.db", "{course}/nbgrader_config.py",
                     "{course}/grader/submitted/zz_honest_after/00_toy/00_toy.ipynb"):
            try:
                open(path, "w").write("owned")
            except OSError:
                pass
        os._exit(0)
    os._exit(0)
"""
READ_SECRETS = """
import glob
for pattern in ("{course}/solutions/*/*.ipynb", "{course}/grader/gradebook.db", "{course}/grader/*.py"):
    for path in glob.glob(pattern):
        print(open(path, errors="replace").read())
def _echo(result):
    print(result.info.raw_cell)
get_ipython().events.register("post_run_cell", _echo)
"""
KILL_PARENT = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
STOP_PARENT = "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n"
FLOOD = "import sys\nfor _ in range(40):\n    sys.stdout.write('x' * 1_000_000)\n"
WARNING = """
_square = square
def square(x):
    import warnings
    warnings.warn("overflow encountered (harmless)", RuntimeWarning)
    return _square(x)
"""
MARKER = "# ### BEGIN HIDDEN TESTS\n# a learner's note that looks like a marker\n"
IGNORE_SIGINT = """
def cube(x):
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pass
"""

MEMORY_HOG = "_hog = bytearray(16 << 30)  # beyond the sandbox's address-space limit: MemoryError\n"

ATTACKS = [
    Attack("input_transformer", TRANSFORMER),
    Attack("pre_run_cell_result", CALLBACK),
    Attack("rigged_float", RIGGED, base="reference", after="cube"),
    Attack("numpy_and_import_hook", NUMPY_PATCH, base="wrong_mean"),
    Attack("rewrite_package_file", REWRITE, base="reference"),
    Attack("detached_process", DETACHED, base="reference"),
    Attack("read_hidden_tests", READ_SECRETS, base="reference"),
    Attack("kill_parent", KILL_PARENT, base="reference", not_graded=True),
    Attack("stop_parent", STOP_PARENT, base="reference", not_graded=True),
    Attack("output_flood", FLOOD, base="reference"),
    Attack("memory_hog", MEMORY_HOG, base="reference", after="square"),
    Attack("warning_on_stderr", WARNING, base="reference", after="square"),
    Attack("marker_text", MARKER, base="reference"),
    Attack("ignore_sigint_loop", IGNORE_SIGINT, base="reference", after="cube"),
]
REPRESENTATIVE = ("input_transformer", "rigged_float", "rewrite_package_file", "kill_parent", "warning_on_stderr")
# the honest score of the code under each attack: the rigged float wraps a wrong cube
HONEST_OF = {"rigged_float": "wrong_cube", "ignore_sigint_loop": "looping_cube"}


def _selected():
    if os.environ.get("GRADING_FULL"):
        return ATTACKS
    return [a for a in ATTACKS if a.name in REPRESENTATIVE]


def _notebook(course: Path, base: str, attack: Attack | None = None):
    kinds = {"blank": "blank", "reference": "reference"}
    nb = submission(TOY, kinds.get(base, "reference"), course)
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    if base == "wrong_mean":
        next(c for c in solutions if "def mean" in c.source).source = "def mean(xs):\n    return sum(xs)\n"
    if base == "wrong_cube":
        next(c for c in solutions if "def cube" in c.source).source = "def cube(x):\n    return x ** 3 + x\n"
    if base == "looping_cube":
        next(c for c in solutions if "def cube" in c.source).source = "def cube(x):\n    while True:\n        pass\n"
    if attack is not None:
        code = attack.code.replace("{course}", str(course))
        if attack.after:  # replaces the function after its definition
            target = next(c for c in solutions if f"def {attack.after}" in c.source)
            target.source += "\n" + code
        else:
            solutions[0].source = code + "\n" + solutions[0].source
    return nb


def _tree(course: Path) -> dict[str, str]:
    files = [
        *sorted((course / "micrograd_plus").rglob("*.py")),
        *sorted((course / "grader").glob("*.py")),
        course / "nbgrader_config.py",
        *sorted((course / "solutions").rglob("*.ipynb")),
    ]
    return {str(f.relative_to(course)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def grade_batch(tmp_path_factory):
    """One course, one batch: honest learners around every selected attack and its honest twin."""
    course = make_course(tmp_path_factory.mktemp("attacks") / "course", [LAB])
    assert grader(course, "release").returncode == 0
    attacks = _selected()
    students = {"aa_honest_before": _notebook(course, "reference"), "zz_honest_after": _notebook(course, "reference")}
    for attack in attacks:
        students[f"attack_{attack.name}"] = _notebook(course, attack.base, attack)
        base = HONEST_OF.get(attack.name, attack.base)
        students[f"honest_{base}"] = _notebook(course, base)
    for student, nb in students.items():
        path = course / "grader" / "submitted" / student / LAB / f"{LAB}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    before = _tree(course)
    proc = grader(course, "autograde", "--lab", LAB, timeout=TOY.timeout)
    return course, attacks, proc, before


def check_honest_learners_get_full_marks(batch):
    course, _, proc, _ = batch
    for student in ("aa_honest_before", "zz_honest_after", "honest_reference"):
        assert scores(course, LAB, student)[0] == FULL, (student, proc.stdout[-3000:])


def check_the_batch_completes_and_the_tree_is_unchanged(batch):
    course, attacks, proc, before = batch
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 1: some submission not graded
    assert "changed the instructor's files" not in proc.stdout
    assert _tree(course) == before
    assert (course / "grader" / "gradebook.db").read_bytes()[:15] == b"SQLite format 3"
    summary = proc.stdout[proc.stdout.index("student") :]
    for attack in attacks:
        assert f"attack_{attack.name}" in summary


def check_no_attack_earns_more_than_its_honest_code(batch):
    course, attacks, _, _ = batch
    failures = []
    for attack in attacks:
        got = scores(course, LAB, f"attack_{attack.name}")[0]
        honest = scores(course, LAB, f"honest_{HONEST_OF.get(attack.name, attack.base)}")[0]
        if got > honest:
            failures.append(f"{attack.name}: {got} > {honest}")
    assert not failures, failures


def check_attacks_on_the_executor_are_recorded_as_not_graded(batch):
    course, attacks, proc, _ = batch
    from grader.hardening import read_status

    status = read_status(course)
    for attack in attacks:
        state = status[f"attack_{attack.name}"][LAB]["status"]
        assert state.startswith("not graded: ") == attack.not_graded, (attack.name, state)
        if attack.not_graded:
            assert f"attack_{attack.name}" in proc.stdout and "NOT GRADED" in proc.stdout
    assert grader(course, "grades").returncode == 0
    import csv

    sheet = {r["student"]: r for r in csv.DictReader((course / "grader" / "grades.csv").open())}
    for attack in attacks:
        row = sheet[f"attack_{attack.name}"]
        assert row["status"].startswith("not graded: ") == attack.not_graded, row
        if attack.not_graded:
            assert float(row["score"]) == 0, row


def check_feedback_leaks_no_hidden_test_and_survives_marker_text(batch):
    course, attacks, _, _ = batch
    proc = grader(course, "feedback", "--lab", LAB)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hidden = hidden_source_lines(nbformat.read(course / "solutions" / LAB / f"{LAB}.ipynb", 4))
    assert hidden
    for attack in attacks:
        page = course / "grader" / "feedback" / f"attack_{attack.name}" / LAB / f"{LAB}.html"
        text = visible_text(page.read_text())
        assert not [line for line in hidden if line in text], attack.name
    flagged = [a for a in attacks if a.not_graded]
    for attack in flagged:
        page = course / "grader" / "feedback" / f"attack_{attack.name}" / LAB / f"{LAB}.html"
        assert "not graded" in page.read_text().lower() or "NotGraded" in page.read_text()


def check_regrading_a_resubmission_regrades_that_learner(batch):
    course, attacks, _, _ = batch
    student = f"attack_{attacks[0].name}"
    path = course / "grader" / "submitted" / student / LAB / f"{LAB}.ipynb"
    nbformat.write(_notebook(course, "reference"), path)
    proc = grader(course, "autograde", "--lab", LAB, "--student", student, timeout=TOY.timeout)
    assert proc.returncode == 0, proc.stdout
    assert scores(course, LAB, student)[0] == FULL
    assert scores(course, LAB, "zz_honest_after")[0] == FULL


def test_hostile_submissions(tmp_path_factory):
    """One batch, every check (one test item, so that pytest-xdist grades the batch once)."""
    batch = grade_batch(tmp_path_factory)
    failures = []
    for check in (
        check_honest_learners_get_full_marks,
        check_the_batch_completes_and_the_tree_is_unchanged,
        check_no_attack_earns_more_than_its_honest_code,
        check_attacks_on_the_executor_are_recorded_as_not_graded,
        check_feedback_leaks_no_hidden_test_and_survives_marker_text,
        check_regrading_a_resubmission_regrades_that_learner,
    ):  # last: it changes a submission
        try:
            check(batch)
        except AssertionError as error:
            failures.append(f"{check.__name__}: {error}")
    assert not failures, "\n".join(failures)


def test_the_staged_package_has_no_reference_for_the_lab_being_graded():
    """While lab N is graded, micrograd_plus in the sandbox is the learner edition for N and later."""
    from grader.sandbox import staged_package

    root = Path(__file__).resolve().parent.parent
    labs = sorted(p.name for p in (root / "labs").iterdir() if p.is_dir())
    if "03_layers" not in labs:
        pytest.skip("lab 03 is not in this course yet")
    package = staged_package(root, "03_layers")
    layers = (package / "layers.py").read_text()
    tensor = (package / "tensor.py").read_text()
    assert "raise NotImplementedError" in layers
    assert tensor == (root / "micrograd_plus" / "tensor.py").read_text()  # earlier labs: the reference


def test_missing_bubblewrap_refuses_to_grade(tmp_path, monkeypatch):
    from grader import sandbox

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(sandbox.SandboxUnavailable, match="bubblewrap"):
        sandbox.check()
