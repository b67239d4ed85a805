"""Generate the learner labs from the solution notebooks with nbgrader.

``python -m grader.release [--lab 02_tensor]`` runs ``nbgrader generate_assignment
<lab> --force`` for every lab in solutions/ (or one): solution regions become stubs,
hidden tests are removed, graded cells are locked and checksummed, outputs cleared,
and the lab is recorded in the gradebook (grader/gradebook.db). Running it twice
changes no byte of labs/.

Each released notebook is then tidied for the learner (``tidy``): the notebook metadata
JupyterLab writes for a Python kernel (so an untouched lab does not open as "unsaved"),
no cell ``execution`` timings of the instructor's run, and no ``nbval-*`` cell tags (they
steer the solution notebooks' checks; other tags stay).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from grader.export import ROOT, lab_notebooks

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# What an IPython kernel reports and JupyterLab stores, except the Python version (which
# depends on the learner's machine: grader/mylabs.py adds it to the learner's copy).
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}


def tidy(path: Path) -> None:
    """Learner-facing metadata for a released notebook; deterministic, idempotent."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata = nbformat.from_dict(
        {
            **{k: v for k, v in nb.metadata.items() if k not in ("kernelspec", "language_info")},
            "kernelspec": KERNELSPEC,
            "language_info": LANGUAGE_INFO,
        }
    )
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        tags = [t for t in cell.metadata.get("tags", []) if not t.startswith("nbval-")]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
    nbformat.write(nb, str(path))


# Files a learner hands in with the notebook (lab 10's trained weights, never committed): make collect gathers
# them from the LMS download, the sandbox copies them next to the notebook.
HANDED_IN = ("cnn_weights.npz",)
# Files of a solution folder that are never released: what learners hand in (the notebook's own runs write it
# there, git-ignored) and lab 10's short_run.json, the bound of the short run that the course's own runs of the
# solution train (nbval, grading's reference run, the grader test suite; see the lab's graded accuracy cell).
REFERENCE_ONLY = (*HANDED_IN, "short_run.json")


def lab_names(lab: str | None = None) -> list[str]:
    """Names of the labs in solutions/ in course order (``01_value``, ``02_tensor``, ...)."""
    return [nb.parent.name for nb in lab_notebooks(ROOT / "solutions", lab)]


def release(lab: str | None = None) -> None:
    for name in lab_names(lab):
        print(f"releasing {name}: solutions/{name} -> labs/{name}")
        subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force", "--log-level=WARN"],
            cwd=ROOT,
            check=True,
        )
        tidy(ROOT / "labs" / name / f"{name}.ipynb")
        for file in REFERENCE_ONLY:
            (ROOT / "labs" / name / file).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", help="only this lab, e.g. 02_tensor")
    release(parser.parse_args(argv).lab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
