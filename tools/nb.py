"""Authoring helpers for the solution notebooks (the course's source files).

The notebooks are edited in JupyterLab, or as plain text through a jupytext
round trip, then executed so that their outputs are committed (nbval compares them):

    python -m tools.nb to-py   solutions/02_tensor/02_tensor.ipynb  /tmp/02_tensor.py
    python -m tools.nb from-py /tmp/02_tensor.py  solutions/02_tensor/02_tensor.ipynb
    python -m tools.nb execute solutions/02_tensor/02_tensor.ipynb

In the percent format a cell's nbgrader metadata goes on its header line, e.g.
``# %% nbgrader={"grade": true, "grade_id": "test_add", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}``.
``from-py`` keeps only nbgrader metadata and gives every cell a stable id
(the grade_id where there is one), so a round trip leaves an unchanged notebook unchanged.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _stable_ids(nb) -> None:
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        base = re.sub(r"[^A-Za-z0-9_-]", "-", grade_id) if grade_id else f"{cell.cell_type[:2]}{index:03d}"
        cell_id, n = base[:60], 1
        while cell_id in seen:
            n += 1
            cell_id = f"{base[:56]}-{n}"
        seen.add(cell_id)
        cell["id"] = cell_id


def clean(nb):
    """Keep only nbgrader cell metadata, a standard kernelspec, and stable cell ids."""
    for cell in nb.cells:
        keep = {k: v for k, v in cell.get("metadata", {}).items() if k in ("nbgrader", "deletable", "editable")}
        cell["metadata"] = keep
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    nb.nbformat, nb.nbformat_minor = 4, 5
    _stable_ids(nb)
    return nb


def from_py(src: Path, dest: Path) -> None:
    import jupytext

    nb = clean(jupytext.read(src, fmt="py:percent"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)


def to_py(src: Path, dest: Path) -> None:
    import jupytext

    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        cell.outputs = [] if cell.cell_type == "code" else cell.get("outputs")
    jupytext.write(nb, dest, fmt="py:percent")


def execute(path: Path, timeout: int = 900) -> None:
    """Run a notebook top to bottom in its own folder and save it with its outputs."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("from-py", "to-py"):
        p = sub.add_parser(name)
        p.add_argument("src", type=Path)
        p.add_argument("dest", type=Path)
    p = sub.add_parser("execute")
    p.add_argument("notebooks", type=Path, nargs="+")
    p.add_argument("--timeout", type=int, default=900)
    args = parser.parse_args(argv)
    if args.command == "from-py":
        from_py(args.src, args.dest)
    elif args.command == "to-py":
        to_py(args.src, args.dest)
    else:
        for path in args.notebooks:
            print(f"executing {path}")
            execute(path, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
