"""Authoring helpers for the solution notebooks (the course's source files).

The notebooks are edited in JupyterLab, or as plain text through a jupytext
round trip, then executed so that their outputs are committed (nbval compares them):

    python -m tools.nb to-py   solutions/02_tensor/02_tensor.ipynb  /tmp/02_tensor.py
    python -m tools.nb from-py /tmp/02_tensor.py  solutions/02_tensor/02_tensor.ipynb
    python -m tools.nb execute solutions/02_tensor/02_tensor.ipynb

In the percent format a cell's nbgrader metadata and tags go on its header line, e.g.
``# %% nbgrader={"grade": true, "grade_id": "test_add", "locked": true, "points": 2, ...}`` (the whole
metadata object on one line)
or ``# %% tags=["nbval-ignore-output"]``. ``from-py`` keeps only nbgrader metadata and cell
tags and gives every cell a stable id (the grade_id where there is one), so a round trip
leaves an unchanged notebook unchanged.

A cell whose output legitimately varies carries nbval's ``nbval-ignore-output`` tag.
``tag-nbval`` converts the older convention, a ``# NBVAL_IGNORE_OUTPUT`` comment as the
first line (and nbval's other such markers), into the tag, in place:

    python -m tools.nb tag-nbval solutions/*/*.ipynb
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


_DEFINITION = re.compile(r"^(?:async def|def|class)\s+(\w+)|^([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", re.M)


def exported_cell_name(source: str) -> str | None:
    """The name of an exported cell (``#| export``): its first top-level definition.

    >>> exported_cell_name("#| export ops\\nimport numpy as np\\n\\n@dataclass\\nclass Add(Function):\\n    pass")
    'Add'
    >>> exported_cell_name("#| export hooks\\nimport numpy as np")
    'hooks-imports'
    >>> exported_cell_name("x = 1") is None
    True
    """
    directive = re.match(r"#\|\s*exporti?\b[ \t]*(\S*)", source)
    if not directive:
        return None
    match = _DEFINITION.search(source)
    if match:
        return match.group(1) or match.group(2)
    return "-".join(filter(None, (directive.group(1).replace(".", "-"), "imports")))


def _stable_ids(nb) -> None:
    """Ids that do not move when cells are added: the grade_id, else an exported cell's first definition."""
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        name = exported_cell_name(cell.source) if cell.cell_type == "code" else None
        given = grade_id or name
        base = re.sub(r"[^A-Za-z0-9_-]", "-", str(given)) if given else f"{cell.cell_type[:2]}{index:03d}"
        cell_id, n = base[:60], 1
        while cell_id in seen:
            n += 1
            cell_id = f"{base[:56]}-{n}"
        seen.add(cell_id)
        cell["id"] = cell_id


def clean(nb):
    """Keep only nbgrader cell metadata and tags, a standard kernelspec, and stable cell ids."""
    for cell in nb.cells:
        keep = {k: v for k, v in cell.get("metadata", {}).items() if k in ("nbgrader", "deletable", "editable", "tags")}
        if not keep.get("tags", True):
            del keep["tags"]
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
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent.resolve())}}
    ).execute()
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    nbformat.write(nb, path)


# nbval's comment markers (first line of a code cell) and the cell tags that replace them
NBVAL_MARKERS = {
    "NBVAL_IGNORE_OUTPUT": "nbval-ignore-output",
    "NBVAL_CHECK_OUTPUT": "nbval-check-output",
    "NBVAL_SKIP": "nbval-skip",
    "NBVAL_RAISES_EXCEPTION": "nbval-raises-exception",
}
_MARKER_LINE = re.compile(r"\A[ \t]*#[ \t]*(" + "|".join(NBVAL_MARKERS) + r")[ \t]*(?:\n|\Z)")


def tag_nbval(nb) -> int:
    """Replace a first-line ``# NBVAL_...`` comment by nbval's cell tag; returns the cells changed.

    >>> cell = nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\\nprint(time.time())")
    >>> nb = nbformat.v4.new_notebook(cells=[cell])
    >>> tag_nbval(nb), nb.cells[0].source, nb.cells[0].metadata.tags
    (1, 'print(time.time())', ['nbval-ignore-output'])
    >>> tag_nbval(nb)
    0
    """
    changed = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        match = _MARKER_LINE.match(cell.source)
        if not match:
            continue
        cell.source = cell.source[match.end() :]
        tags = cell.metadata.setdefault("tags", [])
        if NBVAL_MARKERS[match.group(1)] not in tags:
            tags.append(NBVAL_MARKERS[match.group(1)])
        changed += 1
    return changed


def tag_nbval_files(paths: list[Path]) -> int:
    """``tag_nbval`` on notebook files, in place (a file with no marker is not rewritten)."""
    total = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        changed = tag_nbval(nb)
        if changed:
            nbformat.write(nb, path)
            print(f"{path}: {changed} cell(s) now tagged instead of marked by a comment")
        total += changed
    return total


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
    p = sub.add_parser("tag-nbval", help="turn first-line # NBVAL_... comments into nbval cell tags, in place")
    p.add_argument("notebooks", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "from-py":
        from_py(args.src, args.dest)
    elif args.command == "to-py":
        to_py(args.src, args.dest)
    elif args.command == "tag-nbval":
        tag_nbval_files(args.notebooks)
    else:
        for path in args.notebooks:
            print(f"executing {path}")
            execute(path, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
