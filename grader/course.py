"""Shared helpers of the grading commands: the course root, running nbgrader, the gradebook."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from grader.export import ROOT, lab_notebooks

GRADER = ROOT / "grader"
SUBMITTED = GRADER / "submitted"
AUTOGRADED = GRADER / "autograded"
FEEDBACK = GRADER / "feedback"
DB_URL = f"sqlite:///{GRADER / 'gradebook.db'}"
COURSE_ID = "micrograd-plus"


def lab_names(source: str = "solutions", lab: str | None = None) -> list[str]:
    """Labs of ``solutions/`` (or ``labs/``) in course order."""
    return [nb.parent.name for nb in lab_notebooks(ROOT / source, lab)]


def submitted_labs(lab: str | None = None) -> list[str]:
    """Labs that have at least one submission in grader/submitted/<student>/<lab>/."""
    found = sorted({p.name for p in SUBMITTED.glob("*/*") if p.is_dir()})
    if lab:
        return [lab] if lab in found else []
    return found


def env() -> dict[str, str]:
    """The environment of nbgrader and of the kernels it starts: the course package importable."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [e.get("PYTHONPATH")])])
    e.setdefault("MICROGRAD_PLUS_COURSE_ROOT", str(ROOT))
    e.setdefault("MPLBACKEND", "Agg")
    return e


def nbgrader(*args: str) -> int:
    """Run ``nbgrader <args>`` in the course root; returns its exit status."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    print("$ nbgrader " + " ".join(args), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env()).returncode


def gradebook():
    from nbgrader.api import Gradebook
    return Gradebook(DB_URL, COURSE_ID)


def in_gradebook(lab: str) -> bool:
    from nbgrader.api import MissingEntry
    if not (GRADER / "gradebook.db").exists():
        return False
    with gradebook() as gb:
        try:
            gb.find_assignment(lab)
        except MissingEntry:
            return False
    return True
