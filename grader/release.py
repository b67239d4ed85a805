"""Generate the learner labs from the solution notebooks with nbgrader.

``python -m grader.release [--lab 02_tensor]`` runs ``nbgrader generate_assignment
<lab> --force`` for every lab in solutions/ (or one): solution regions become stubs,
hidden tests are removed, graded cells are locked and checksummed, outputs cleared,
and the lab is recorded in the gradebook (grader/gradebook.db). Running it twice
changes no byte of labs/.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

from grader.export import ROOT, lab_notebooks


def lab_names(lab: str | None = None) -> list[str]:
    """Names of the labs in solutions/ in course order (``01_value``, ``02_tensor``, ...)."""
    return [nb.parent.name for nb in lab_notebooks(ROOT / "solutions", lab)]


def release(lab: str | None = None) -> None:
    for name in lab_names(lab):
        print(f"releasing {name}: solutions/{name} -> labs/{name}")
        subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force", "--log-level=WARN"],
            cwd=ROOT, check=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", help="only this lab, e.g. 02_tensor")
    release(parser.parse_args(argv).lab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
