"""Genuine test helpers for each graded cell: the code of the guard cells the grader inserts.

At autograde, :class:`grader.hardening.GuardTestHelpers` puts two kinds of cells into the
notebook it sends to the sandbox (they are removed again afterwards):

- at the top, before any cell of the learner, ``import grader.guard``: importing this module
  keeps the genuine ``numpy`` and ``numpy.testing`` comparison helpers (:data:`GENUINE`);
- before every graded cell, a call of :func:`restore`, which puts them back into ``numpy``,
  ``numpy.testing`` and the notebook's namespace, re-imports the course's checking modules
  from their files, and drops input transformers and cell callbacks the notebook installed.

This runs in the learner's kernel, so a determined learner can reach it: it is a net for
honest mistakes (a notebook that shadowed ``allclose``, a monkeypatch left over from an
experiment), not security. Security comes from the checks a graded cell records, compared
outside the kernel (``grader/checks.py``, ``grader/verdicts.py``).

Example:
    >>> import numpy
    >>> from grader import guard
    >>> namespace = {"allclose": lambda *a, **k: True, "np": numpy}
    >>> saved, numpy.allclose = numpy.allclose, namespace["allclose"]
    >>> restore(namespace, own=(), package_helpers={})
    >>> numpy.allclose is saved and namespace["allclose"] is saved
    True
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

import numpy
import numpy.testing

NUMPY_HELPERS: tuple[str, ...] = ("allclose", "isclose", "array_equal", "array_equiv")
"""``numpy`` functions that graded cells compare with."""

TESTING_HELPERS: tuple[str, ...] = (
    "assert_allclose",
    "assert_array_equal",
    "assert_array_almost_equal",
    "assert_almost_equal",
    "assert_equal",
    "assert_array_less",
    "assert_raises",
)
"""``numpy.testing`` functions that graded cells compare with."""

GENUINE: dict[str, Callable[..., Any]] = {
    **{name: getattr(numpy, name) for name in NUMPY_HELPERS},
    **{name: getattr(numpy.testing, name) for name in TESTING_HELPERS},
}
"""The helpers as they were when this module was first imported (before the learner's first cell)."""

# Cell callbacks that belong to the kernel and its display machinery, not to the notebook.
KERNEL_CALLBACK_MODULES = ("IPython", "ipykernel", "matplotlib", "matplotlib_inline", "comm", "ipywidgets")


def reimport(module: str) -> Any:
    """Import ``module`` afresh from its file and point its parent package's attribute at the new copy.

    Example:
        >>> import micrograd_plus.gradcheck as before
        >>> reimport("micrograd_plus.gradcheck") is not before
        True
    """
    sys.modules.pop(module, None)
    fresh = importlib.import_module(module)
    package, _, leaf = module.rpartition(".")
    if package:
        setattr(importlib.import_module(package), leaf, fresh)
    return fresh


def restore(
    namespace: MutableMapping[str, Any],
    own: Iterable[str],
    package_helpers: Mapping[str, Iterable[str]],
) -> None:
    """Put the genuine test helpers back before a graded cell.

    Args:
        namespace: the notebook's globals.
        own: helper names the lab itself defines (the learner's work): left as the notebook has them.
        package_helpers: course module -> helper names; each module the notebook imported is
            imported afresh from its file and its helpers are put back.
    """
    genuine = dict(GENUINE)
    for name in NUMPY_HELPERS:
        setattr(numpy, name, GENUINE[name])
    for name in TESTING_HELPERS:
        setattr(numpy.testing, name, GENUINE[name])
    for module, names in package_helpers.items():
        if module in sys.modules:
            fresh = reimport(module)
            genuine.update({name: getattr(fresh, name) for name in names if hasattr(fresh, name)})
    own = set(own)
    for name, value in genuine.items():
        if name in namespace and name not in own:
            namespace[name] = value
    for alias in ("np", "numpy"):
        if alias in namespace:
            namespace[alias] = numpy
    _drop_notebook_hooks()


def _drop_notebook_hooks() -> None:
    """Input transformers and cell callbacks the notebook installed (IPython's own are kept)."""
    try:
        from IPython import get_ipython
    except ImportError:  # not in a kernel
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.input_transformers_post.clear()
    for callbacks in shell.events.callbacks.values():
        callbacks[:] = [
            cb for cb in callbacks if str(getattr(cb, "__module__", "")).startswith(KERNEL_CALLBACK_MODULES)
        ]


def snapshot_source() -> str:
    """The source of the cell the grader puts at the top of the notebook."""
    return '# grader guard (grader/guard.py): keep the genuine test helpers\n__import__("grader.guard")'


def restore_source(own: Iterable[str], package_helpers: Mapping[str, Iterable[str]]) -> str:
    """The source of the guard cell before each graded cell.

    Example:
        >>> print(restore_source(["check_gradient"], {"toycheck": ["check_gradient"]}))
        # grader guard (grader/guard.py): genuine test helpers for the next graded cell
        __import__("grader.guard").guard.restore(globals(), ['check_gradient'], {'toycheck': ['check_gradient']})
    """
    package = {module: list(names) for module, names in package_helpers.items()}
    return (
        "# grader guard (grader/guard.py): genuine test helpers for the next graded cell\n"
        f'__import__("grader.guard").guard.restore(globals(), {sorted(own)!r}, {package!r})'
    )
