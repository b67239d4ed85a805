"""The learner's own copy of every lab: ``mylabs/NN_topic/NN_topic.ipynb`` (git-ignored).

``labs/`` is the course's release: ``make release``, nbgrader's *Generate* and ``git pull``
rewrite it. Learners type in ``mylabs/`` instead. ``python -m grader.mylabs`` (run by
``make lab``, ``make validate`` and ``make export-mine``)

- creates ``mylabs/NN_topic/`` from ``labs/NN_topic/`` for every lab that has no copy yet;
- never writes over a file that exists in ``mylabs/``;
- when a lab's release has changed since the learner's copy was made, writes the new release
  *next to* the copy, as ``NN_topic.updated.ipynb`` (``NN_topic.updated-2.ipynb``, ... if that
  name is taken), and says so.

Which release each copy was made from is recorded in ``mylabs/.releases.json`` (a SHA-256
per released file, of a notebook's cells only: a change of metadata is not an update). The copies carry the ``language_info`` of the Python that runs them, so
JupyterLab opens an untouched copy clean (not "unsaved").

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "labs" / "01_value").mkdir(parents=True)
>>> _ = (root / "labs" / "01_value" / "01_value.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
>>> sync(root=root)
['created mylabs/01_value/01_value.ipynb (your copy of labs/01_value/01_value.ipynb)']
>>> sync(root=root)
[]
"""  # noqa: E501

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

from grader.export import ROOT

MYLABS = "mylabs"
STATE = ".releases.json"
SKIP = {".ipynb_checkpoints", "__pycache__"}


def language_info() -> dict:
    """The ``language_info`` an IPython kernel of this Python reports (what JupyterLab stores)."""
    from grader.release import LANGUAGE_INFO

    return {**LANGUAGE_INFO, "version": platform.python_version()}


def _sha256(path: Path) -> str:
    """Digest of what a learner reads: a notebook's cells (type, source, nbgrader metadata), other files' bytes."""
    if path.suffix != ".ipynb":
        return hashlib.sha256(path.read_bytes()).hexdigest()
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    content = [(c.get("cell_type"), "".join(c.get("source", "")), c.get("metadata", {}).get("nbgrader")) for c in cells]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _released_files(lab_dir: Path) -> list[Path]:
    return sorted(p for p in lab_dir.rglob("*") if p.is_file() and not SKIP & set(p.relative_to(lab_dir).parts))


def _write_copy(release: Path, dest: Path) -> None:
    """Copy one released file; a notebook gets this Python's language_info (so it opens clean)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if release.suffix != ".ipynb":
        dest.write_bytes(release.read_bytes())
        return
    nb = json.loads(release.read_text(encoding="utf-8"))
    if nb.get("metadata", {}).get("language_info", {}).get("name", "python") == "python":
        nb.setdefault("metadata", {})["language_info"] = language_info()
    dest.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _free_name(dest: Path) -> Path:
    """``NN.updated.ipynb``, or ``NN.updated-2.ipynb``, ... : the first name not taken."""
    n = 1
    while True:
        candidate = dest.with_name(f"{dest.stem}.updated{'' if n == 1 else f'-{n}'}{dest.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def learner_notebook(lab: str, root: Path = ROOT) -> Path:
    """Path of the learner's copy of ``lab``: ``mylabs/<lab>/<lab>.ipynb``."""
    return root / MYLABS / lab / f"{lab}.ipynb"


def sync(lab: str | None = None, root: Path = ROOT) -> list[str]:
    """Create missing copies and offer changed releases next to them; returns what was done."""
    labs_dir, mine = root / "labs", root / MYLABS
    pattern = lab if lab else "[0-9][0-9]_*"
    lab_dirs = sorted(p for p in labs_dir.glob(pattern) if p.is_dir() and (p / f"{p.name}.ipynb").exists())
    if lab and not lab_dirs:
        raise SystemExit(
            f"error: there is no lab {lab} in labs/ (the labs are: "
            f"{', '.join(sorted(p.name for p in labs_dir.glob('[0-9][0-9]_*'))) or 'none'})"
        )
    state_path = mine / STATE
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {}
    done: list[str] = []
    for lab_dir in lab_dirs:
        for release in _released_files(lab_dir):
            rel = release.relative_to(labs_dir).as_posix()
            dest, digest = mine / rel, _sha256(release)
            if not dest.exists():
                _write_copy(release, dest)
                done.append(f"created {MYLABS}/{rel} (your copy of labs/{rel})")
            elif rel in state and state[rel] != digest:
                offered = _free_name(dest)
                _write_copy(release, offered)
                done.append(
                    f"labs/{rel} has been updated since your copy was made: the new version is "
                    f"{offered.relative_to(root).as_posix()}; your {MYLABS}/{rel} is unchanged "
                    "(copy what you need from the new version into it)"
                )
            state[rel] = digest
    if done or state:
        mine.mkdir(exist_ok=True)
        state_path.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", help="only this lab, e.g. 01_value")
    args = parser.parse_args(argv)
    for line in sync(args.lab):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
