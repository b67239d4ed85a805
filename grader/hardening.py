"""nbgrader preprocessors of the course's grading (switched on in ``grader/nbgrader_config.py``).

The nbgrader process is the *trusted* side: it runs no learner code.

- :class:`SandboxedExecute` (autograde) executes the submission in the bubblewrap
  sandbox of :mod:`grader.sandbox` and copies the outputs back; a submission the sandbox
  could not execute is recorded as "not graded: <reason>" and the batch goes on.
- :class:`DecideGrades` (autograde) writes the scores with the rule of
  :mod:`grader.verdicts`: an error fails a cell, stderr/warnings never do, an
  ``execute_result`` never rescues, and the checks a graded cell records must match the
  reference solution's (compared here, outside the kernel).
- :class:`GuardTestHelpers` / :class:`RemoveGuardCells` (autograde, around execution): the
  cells of :mod:`grader.guard`, one at the top that keeps the genuine ``numpy`` test helpers
  and one before each graded cell that puts them (and ``micrograd_plus.gradcheck``) back. They
  run in the learner's kernel: an honest-mistake net, not security (graded cells record their
  checks, compared outside the kernel).
- :class:`HideHiddenTests` (feedback) is nbgrader's ``ClearHiddenTests`` for graded cells
  only (marker-like text in a learner's own cell is harmless), which also removes what a
  failing hidden test leaks through its traceback and the recorded check data.

nbgrader itself restores every graded and locked cell from the gradebook
(``OverwriteCells``) before the notebook goes into the sandbox.
"""

from __future__ import annotations

import ast
import re

import os
import sys
import time

from nbformat.v4 import new_code_cell, new_output
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor, SaveAutoGrades
from traitlets import Dict, Integer

from grader import guard

GUARD_KEY = "micrograd_plus_guard"

# Modules of the course package imported afresh from their file before each test.
PACKAGE_HELPERS = {"micrograd_plus.gradcheck": ("check_gradient", "numerical_gradient")}


def _defined_names(sources: list[str]) -> set[str]:
    """Names that the notebook itself defines with ``def``/``class`` (the lab teaches them)."""
    names = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        names |= {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        }
    return names


class GuardTestHelpers(NbGraderPreprocessor):
    """Insert a guard cell before every graded code cell (see the module docstring).

    A helper that the lab itself defines (e.g. ``check_gradient`` in the lab that teaches
    it) is the learner's work and is left alone in the notebook's namespace.
    """

    package_helpers = Dict(
        PACKAGE_HELPERS,
        help="module -> names of test helpers imported afresh "
        "before each graded cell (only if the notebook imported the module)",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        package = {module: tuple(names) for module, names in self.package_helpers.items()}
        helpers = set(guard.NUMPY_HELPERS) | set(guard.TESTING_HELPERS) | {n for v in package.values() for n in v}
        sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
        try:  # the released notebook (from the gradebook) says what the lab defines
            with Gradebook(resources["nbgrader"]["db_url"]) as gb:
                notebook = gb.find_notebook(resources["nbgrader"]["notebook"], resources["nbgrader"]["assignment"])
                sources = [cell.source for cell in notebook.source_cells if cell.cell_type == "code"]
        except (KeyError, MissingEntry):
            pass
        own = sorted(helpers & _defined_names(sources))
        restore = guard.restore_source(own, package)
        cells = [self._guard_cell(guard.snapshot_source())]
        for cell in nb.cells:
            if cell.cell_type == "code" and utils.is_grade(cell):
                cells.append(self._guard_cell(restore))
            cells.append(cell)
        nb.cells = cells
        return nb, resources

    @staticmethod
    def _guard_cell(source: str):
        cell = new_code_cell(source)
        cell.metadata[GUARD_KEY] = True
        cell.pop("id", None)
        return cell


class RemoveGuardCells(NbGraderPreprocessor):
    """Remove the cells :class:`GuardTestHelpers` inserted (after execution)."""

    def preprocess(self, nb, resources):
        nb.cells = [cell for cell in nb.cells if not cell.metadata.get(GUARD_KEY)]
        return nb, resources


STATUS_FILE = "autograde_status.json"


def status_path(root):
    from pathlib import Path

    return Path(root) / "grader" / STATUS_FILE


def read_status(root) -> dict:
    """student -> lab -> {"status": "graded" | "not graded: <reason>", "seconds": s}."""
    import json

    path = status_path(root)
    return json.loads(path.read_text()) if path.exists() else {}


def write_status(root, student: str, lab: str, status: str, seconds: float) -> None:
    """Record one submission's status. Parallel graders (``make autograde JOBS=N``) take
    turns: the read-modify-write happens under an exclusive lock, the file is replaced
    atomically so that a reader never sees half of it."""
    import fcntl
    import json

    path = status_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        table = read_status(root)
        table.setdefault(student, {})[lab] = {"status": status, "seconds": round(seconds, 2)}
        scratch = path.with_name(f"{path.name}.{os.getpid()}")
        scratch.write_text(json.dumps(table, indent=1, sort_keys=True))
        os.replace(scratch, path)


class SandboxedExecute(NbGraderPreprocessor):
    """Execute the notebook in the bubblewrap sandbox of :mod:`grader.sandbox` (never here).

    The outputs of the executed notebook are copied onto this process's notebook cell by
    cell; sources and metadata stay those nbgrader restored from the gradebook. When the
    sandbox produced no notebook (killed, stopped, hung, out of memory), every code cell
    gets a ``NotGraded`` error naming the reason, and the reason is recorded in
    ``grader/autograde_status.json`` (``make grades`` and the autograde summary show it).
    """

    timeout = Integer(300, help="seconds per cell (nbgrader's Execute.timeout is used when set)").tag(config=True)

    def preprocess(self, nb, resources):
        from grader import sandbox
        from grader.export import ROOT

        lab, student = resources["nbgrader"]["assignment"], resources["nbgrader"]["student"]
        timeout = int(self.config.Execute.get("timeout", self.timeout) or self.timeout)
        started = time.perf_counter()
        SandboxedExecute.done = getattr(SandboxedExecute, "done", 0) + 1
        total = os.environ.get("MICROGRAD_PLUS_BATCH_SIZE", "?")
        print(
            f"  [{SandboxedExecute.done}/{total}] grading {student}/{lab} in the sandbox ...",
            file=sys.stderr,
            flush=True,
        )
        from pathlib import Path

        from grader.release import REFERENCE_ONLY

        folder = Path(resources.get("metadata", {}).get("path") or ".")
        outcome = sandbox.execute(nb, ROOT, lab, timeout, submitted_files=[folder / f for f in REFERENCE_ONLY])
        reason = outcome.reason
        if reason is None:
            executed = outcome.notebook.cells
            if len(executed) != len(nb.cells) or any(a.cell_type != b.cell_type for a, b in zip(executed, nb.cells)):
                reason = "the executed notebook does not match the submission's cells"
        if reason is None:
            for mine, theirs in zip(nb.cells, executed):
                if mine.cell_type == "code":
                    mine.outputs = [o for o in theirs.get("outputs", []) if isinstance(o, dict) and "output_type" in o]
                    mine.execution_count = None
        else:
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = [
                        new_output("error", ename="NotGraded", evalue=reason, traceback=[f"NotGraded: {reason}"])
                    ]
        status = "graded" if reason is None else f"not graded: {reason}"
        write_status(ROOT, student, lab, status, time.perf_counter() - started)
        print(f"  {student}/{lab}: {status} ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
        return nb, resources


class DecideGrades(SaveAutoGrades):
    """nbgrader's ``SaveAutoGrades`` with the course's scoring rule (:mod:`grader.verdicts`).

    A graded cell that fails gets an error output naming why (a failed check by name
    only), so the feedback explains the 0.
    """

    def preprocess(self, nb, resources):
        from grader import verdicts
        from grader.export import ROOT

        lab = resources["nbgrader"]["assignment"]
        timeout = int(self.config.Execute.get("timeout", 300) or 300)
        self._expected = verdicts.reference_records(ROOT, lab, timeout)
        return super().preprocess(nb, resources)

    def _add_score(self, cell, resources):
        from grader import verdicts

        grade = self.gradebook.find_grade(
            cell.metadata["nbgrader"]["grade_id"], self.notebook_id, self.assignment_id, self.student_id
        )
        max_points = float(cell.metadata["nbgrader"]["points"])
        if utils.is_solution(cell) or cell.cell_type != "code":
            auto_score, _ = utils.determine_grade(cell, self.log)
        else:
            passed, why = verdicts.verdict(cell, self._expected.get(cell.metadata["nbgrader"]["grade_id"]))
            auto_score = max_points if passed else 0.0
            if why and not any(o.get("output_type") == "error" for o in cell.outputs):
                cell.outputs.append(
                    new_output(
                        "error",
                        ename="CheckFailed",
                        evalue="; ".join(why),
                        traceback=[f"CheckFailed: {'; '.join(why)}"],
                    )
                )
        grade.auto_score = auto_score
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        self.gradebook.db.commit()


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
HIDDEN_NOTE = "(the test cell's own lines are not shown: it contains hidden tests)"
_FRAME = re.compile(r"^\s*(?:Cell\s+In\s*\[|Input\s+In\s*\[|File\s|<ipython-input-)")
_CELL_NUMBER = re.compile(r"Cell\s+In\s*\[(\d+)\]|Input\s+In\s*\[(\d+)\]|<ipython-input-(\d+)-")


def learner_traceback(traceback: list[str], ename: str, evalue: str) -> list[str]:
    """The traceback of an error in a test cell with hidden tests, without that cell's frames.

    The outermost frame is the test cell itself (its source is hidden); every frame of the
    same cell goes. The frames of the learner's own cells (and of libraries they called)
    stay, so the learner sees where *their* code failed, and the message stays.

    >>> tb = ["----", "ValueError   Traceback", "Cell In[9], line 4\\n----> 4 hidden_check(f)",
    ...       "Cell In[3], line 2, in f\\n----> 2 raise ValueError('negative')", "ValueError: negative"]
    >>> learner_traceback(tb, "ValueError", "negative")[2:]
    ["(the test cell's own lines are not shown: it contains hidden tests)", "Cell In[3], line 2, in f\\n----> 2 raise ValueError('negative')", 'ValueError: negative']
    """  # noqa: E501
    plain = [strip_ansi(entry) for entry in traceback]
    frames = [i for i, entry in enumerate(plain) if _FRAME.match(entry)]
    header = traceback[: frames[0]] if frames else []
    test_cell = _CELL_NUMBER.search(plain[frames[0]]) if frames else None
    number = next((g for g in test_cell.groups() if g), None) if test_cell else None

    def own(i):
        m = _CELL_NUMBER.search(plain[i])
        return m is not None and number is not None and next(g for g in m.groups() if g) == number

    kept = [traceback[i] for i in frames if not own(i)]
    return [*header, HIDDEN_NOTE, *kept, f"{ename}: {evalue}"]


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class HideHiddenTests(ClearHiddenTests):
    """``ClearHiddenTests`` for feedback that also keeps hidden-test source out of outputs.

    In a graded cell with hidden tests, an error's traceback keeps the frames of the
    learner's own code and the message (``AssertionError: <message>``), not the frames of
    the test cell itself (:func:`learner_traceback`). In every output of the notebook, a line
    that quotes a line of a hidden region is dropped.
    """

    min_quoted = 6  # shorter hidden lines (``)``, ``else:``) are not worth hiding

    def preprocess(self, nb, resources):
        self._hidden_lines = set()
        for cell in nb.cells:
            inside = False
            for line in cell.source.split("\n"):
                if self.begin_test_delimeter in line:
                    inside = True
                elif self.end_test_delimeter in line:
                    inside = False
                elif inside and len(line.strip()) >= self.min_quoted:
                    self._hidden_lines.add(line.strip())
        return super().preprocess(nb, resources)

    def _quotes_hidden(self, line: str) -> bool:
        plain = strip_ansi(line)
        return any(hidden in plain for hidden in self._hidden_lines)

    def _scrub(self, text: str) -> str:
        return "\n".join(line for line in text.split("\n") if not self._quotes_hidden(line))

    def preprocess_cell(self, cell, resources, cell_index):
        from grader.checks import MIME

        if utils.is_grade(cell) and not utils.is_solution(cell):
            cell, resources = super().preprocess_cell(cell, resources, cell_index)
            had_hidden = getattr(self, "_last_removed", False)
        else:  # marker-like text in a learner's own cell is just text
            had_hidden = False
        if cell.cell_type == "code":  # recorded check data is for the grader, not the page
            cell.outputs = [o for o in cell.get("outputs", []) if MIME not in o.get("data", {})]
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                if had_hidden:
                    output.traceback = learner_traceback(output.traceback, output.ename, output.evalue)
                output.traceback = [self._scrub(line) for line in output.traceback]
                output.evalue = self._scrub(output.evalue)
            elif output.output_type == "stream":
                output.text = self._scrub(output.text)
            elif "data" in output:
                for mime, value in output.data.items():
                    if mime.startswith("text/") and isinstance(value, str):
                        output.data[mime] = self._scrub(value)
        return cell, resources

    def _remove_hidden_test_region(self, cell):
        self._last_removed = super()._remove_hidden_test_region(cell)
        return self._last_removed
