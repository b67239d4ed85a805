"""``make student-release``: a learner-only copy that passes its own smoke check."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_student_release_builds_and_passes_its_smoke_check(tmp_path):
    dest = tmp_path / "learner"
    proc = subprocess.run(
        [sys.executable, "-m", "grader.student_release", "--dest", str(dest)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("[ok]") == 3
    assert not (dest / "solutions").exists() and not (dest / "tests").exists()
    assert not list(dest.rglob("*BEGIN SOLUTION*"))
    for module in (dest / "micrograd_plus").glob("*.py"):
        assert "### BEGIN HIDDEN TESTS" not in module.read_text()
    stubs = [m.name for m in (dest / "micrograd_plus").glob("*.py") if "NotImplementedError" in m.read_text()]
    assert stubs, "the learner package should hold stubs"
    # nothing of the reference solutions: no solution notebook anywhere in the copy
    assert not [p for p in dest.rglob("*.ipynb") if "labs" not in p.parts]
