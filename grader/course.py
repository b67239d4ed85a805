"""Shared helpers of the grading commands: the course root, running nbgrader, the gradebook."""

from __future__ import annotations

import os
import subprocess
import sys

from grader.database import database_url, sqlite_path
from grader.export import ROOT, lab_notebooks

GRADER = ROOT / "grader"
SUBMITTED = GRADER / "submitted"
AUTOGRADED = GRADER / "autograded"
FEEDBACK = GRADER / "feedback"
DB_URL = database_url(ROOT)  # grader/gradebook.db, or MICROGRAD_PLUS_DB_URL (make ... DB_URL=...)
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


def gradebook_exists() -> bool:
    """False only for a SQLite gradebook whose file is not there yet (nothing released)."""
    path = sqlite_path(DB_URL)
    return path is None or path.exists()


def in_gradebook(lab: str) -> bool:
    from nbgrader.api import MissingEntry

    if not gradebook_exists():
        return False
    with gradebook() as gb:
        try:
            gb.find_assignment(lab)
        except MissingEntry:
            return False
    return True
