"""The guard cells' code (grader/guard.py): genuine helpers back before each graded cell."""

from __future__ import annotations

import numpy
import numpy.testing
import pytest

from grader import guard


@pytest.fixture
def tampered():
    """numpy.allclose and numpy.testing.assert_allclose replaced by functions that always pass."""
    saved = numpy.allclose, numpy.testing.assert_allclose
    numpy.allclose = lambda *a, **k: True
    numpy.testing.assert_allclose = lambda *a, **k: None
    yield
    numpy.allclose, numpy.testing.assert_allclose = saved


def test_restore_puts_back_the_genuine_numpy_helpers(tampered):
    fake = numpy.allclose
    namespace = {"allclose": fake, "np": object(), "assert_allclose": numpy.testing.assert_allclose}
    guard.restore(namespace, own=(), package_helpers={})
    assert numpy.allclose is guard.GENUINE["allclose"] and not numpy.allclose([1.0], [2.0])
    with pytest.raises(AssertionError):
        numpy.testing.assert_allclose([1.0], [2.0])
    assert namespace["allclose"] is guard.GENUINE["allclose"] and namespace["np"] is numpy
    assert namespace["assert_allclose"] is guard.GENUINE["assert_allclose"]


def test_restore_leaves_the_labs_own_definitions_alone(tampered):
    def allclose(a, b):  # a lab that teaches its own allclose
        return True

    namespace = {"allclose": allclose}
    guard.restore(namespace, own=["allclose"], package_helpers={})
    assert namespace["allclose"] is allclose and numpy.allclose is guard.GENUINE["allclose"]


def test_restore_reimports_course_helpers_from_their_files(monkeypatch):
    import sys

    import micrograd_plus
    import micrograd_plus.gradcheck as gradcheck

    # put the original module back afterwards: other tests hold its classes
    monkeypatch.setitem(sys.modules, "micrograd_plus.gradcheck", gradcheck)
    monkeypatch.setattr(micrograd_plus, "gradcheck", gradcheck)
    monkeypatch.setattr(gradcheck, "check_gradient", lambda *a, **k: True)  # a submission that patched it
    namespace = {"check_gradient": gradcheck.check_gradient}
    guard.restore(namespace, own=(), package_helpers={"micrograd_plus.gradcheck": ["check_gradient"]})
    fresh = micrograd_plus.gradcheck
    assert fresh is not gradcheck and sys.modules["micrograd_plus.gradcheck"] is fresh
    assert namespace["check_gradient"] is fresh.check_gradient
    assert fresh.check_gradient.__module__ == "micrograd_plus.gradcheck"


def test_guard_cell_sources_compile_and_run():
    compile(guard.snapshot_source(), "<guard>", "exec")
    namespace: dict = {"np": None}
    exec(guard.restore_source([], {}), namespace)
    assert namespace["np"] is numpy
