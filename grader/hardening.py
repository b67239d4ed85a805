"""nbgrader preprocessors that keep broken or hostile submissions from earning points.

They are switched on in ``grader/nbgrader_config.py``:

- :class:`GuardTestHelpers` (autograde, before execution) inserts a small *guard cell*
  before every graded test cell. It puts back the genuine ``numpy.allclose``-style
  helpers, ``numpy.testing.assert_*`` and a freshly imported
  ``micrograd_plus.gradcheck``, so a submission that monkeypatched them (``np.allclose =
  lambda *a, **k: True``) does not pass the tests it attacks.
- :class:`SafeExecute` (autograde) is nbgrader's ``Execute`` that survives a kernel that
  dies (``os._exit``, a segfault, running out of memory): the cell that killed it and
  every later cell get an error output, so the submission is graded (those cells score
  0) instead of the whole submission failing.
- :class:`RemoveGuardCells` (autograde, after execution) takes the guard cells out again,
  so the graded notebook and the feedback show the learner's notebook unchanged.
- :class:`HideHiddenTests` (feedback) is nbgrader's ``ClearHiddenTests`` that also removes
  what a failing hidden test leaks through its traceback: IPython quotes the failing
  source line (and lines around it) in the traceback of the cell.

nbgrader itself already restores every graded and locked cell from the gradebook
(``OverwriteCells``), executes with a per-cell timeout (``c.Execute.timeout``) and keeps
going after a cell raises (``SystemExit`` from ``sys.exit()`` included), so those need no
code here.

Limits: the guard runs in the learner's process. It defeats rebinding names (the usual
way to cheat a test); code that edits numpy's functions in place, ``builtins`` or the
import machinery can still fool it. Review suspicious submissions; see
docs/INSTRUCTORS.md for running the autograder in a container.
"""
from __future__ import annotations

import ast
import re

from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_code_cell, new_output
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from traitlets import Dict

GUARD_KEY = "micrograd_plus_guard"

# numpy names restored from the module that defines them.
NUMPY_HELPERS = ("allclose", "isclose", "array_equal", "array_equiv")
TESTING_HELPERS = ("assert_allclose", "assert_array_equal", "assert_array_almost_equal",
                   "assert_almost_equal", "assert_equal", "assert_array_less", "assert_raises")
# Modules of the course package imported afresh from their file before each test.
PACKAGE_HELPERS = {"micrograd_plus.gradcheck": ("check_gradient", "numerical_gradient")}

GUARD_SOURCE = '''\
# grader guard (grader/hardening.py): genuine test helpers for the next graded cell
def _grader_guard(ns, own):
    import importlib, sys, numpy, numpy.testing
    from numpy._core import numeric
    from numpy.testing._private import utils as testing
    genuine = {{}}
    for name in {numpy!r}:
        genuine[name] = getattr(numeric, name)
        setattr(numpy, name, genuine[name])
    for name in {testing!r}:
        genuine[name] = getattr(testing, name)
        setattr(numpy.testing, name, genuine[name])
    for module, names in {package!r}.items():
        if module not in sys.modules:
            continue
        package, _, leaf = module.rpartition(".")
        del sys.modules[module]
        fresh = importlib.import_module(module)
        if package:
            setattr(importlib.import_module(package), leaf, fresh)
        genuine.update({{name: getattr(fresh, name) for name in names if hasattr(fresh, name)}})
    for name, value in genuine.items():
        if name in ns and name not in own:
            ns[name] = value
    for alias in ("np", "numpy"):
        if alias in ns:
            ns[alias] = numpy
_grader_guard(globals(), {own!r}); del _grader_guard
'''


def _defined_names(sources: list[str]) -> set[str]:
    """Names that the notebook itself defines with ``def``/``class`` (the lab teaches them)."""
    names = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        names |= {node.name for node in ast.walk(tree)
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return names


class GuardTestHelpers(NbGraderPreprocessor):
    """Insert a guard cell before every graded code cell (see the module docstring).

    A helper that the lab itself defines (e.g. ``check_gradient`` in the lab that teaches
    it) is the learner's work and is left alone in the notebook's namespace.
    """

    package_helpers = Dict(PACKAGE_HELPERS, help="module -> names of test helpers imported afresh "
                           "before each graded cell (only if the notebook imported the module)").tag(config=True)

    def preprocess(self, nb, resources):
        package = {module: tuple(names) for module, names in self.package_helpers.items()}
        helpers = set(NUMPY_HELPERS) | set(TESTING_HELPERS) | {n for v in package.values() for n in v}
        sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
        try:  # the released notebook (from the gradebook) says what the lab defines
            with Gradebook(resources["nbgrader"]["db_url"]) as gb:
                notebook = gb.find_notebook(resources["nbgrader"]["notebook"], resources["nbgrader"]["assignment"])
                sources = [cell.source for cell in notebook.source_cells if cell.cell_type == "code"]
        except (KeyError, MissingEntry):
            pass
        own = sorted(helpers & _defined_names(sources))
        guard = GUARD_SOURCE.format(numpy=NUMPY_HELPERS, testing=TESTING_HELPERS,
                                    package=package, own=own)
        cells = []
        for cell in nb.cells:
            if cell.cell_type == "code" and utils.is_grade(cell):
                guard_cell = new_code_cell(guard)
                guard_cell.metadata[GUARD_KEY] = True
                guard_cell.pop("id", None)
                cells.append(guard_cell)
            cells.append(cell)
        nb.cells = cells
        return nb, resources


class RemoveGuardCells(NbGraderPreprocessor):
    """Remove the cells :class:`GuardTestHelpers` inserted (after execution)."""

    def preprocess(self, nb, resources):
        nb.cells = [cell for cell in nb.cells if not cell.metadata.get(GUARD_KEY)]
        return nb, resources


class SafeExecute(Execute):
    """nbgrader's ``Execute`` that grades the rest of a notebook as failed when the kernel dies."""

    def on_cell_execute(self, **kwargs):
        self._cell_index = kwargs.get("cell_index")

    def preprocess(self, nb, resources, km=None):
        self._cell_index = None
        try:
            return super().preprocess(nb, resources, km=km)
        except DeadKernelError as error:
            start = self._cell_index or 0
            self.log.error("The kernel died in cell %s (%s); that cell and every later one score 0", start, error)
            for cell in nb.cells[start:]:
                if cell.cell_type == "code":
                    cell.outputs = [*cell.get("outputs", []), new_output(
                        "error", ename="DeadKernelError",
                        evalue="the kernel died while this notebook ran (os._exit, a crash or out of memory)",
                        traceback=["DeadKernelError: the kernel died (os._exit, a crash or out of memory)"])]
            return nb, resources


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
HIDDEN_NOTE = "(traceback not shown: this test cell contains hidden tests)"


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class HideHiddenTests(ClearHiddenTests):
    """``ClearHiddenTests`` for feedback that also keeps hidden-test source out of outputs.

    In a graded cell with hidden tests, an error's traceback is replaced by its last line
    (``AssertionError: <message>``) and a note. In every output of the notebook, a line
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
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        had_hidden = getattr(self, "_last_removed", False)
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                if had_hidden:
                    output.traceback = [f"{output.ename}: {output.evalue}", HIDDEN_NOTE]
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
