"""Unpack an LMS download of one lab into ``grader/submitted/<student>/<lab>/``.

``python -m grader.collect --zip downloads.zip --lab 01_value``

Copies the archive to ``grader/downloaded/<lab>/archive/`` and runs
``nbgrader zip_collect <lab> --force``. Files in the archive must be named
``<student_id>_[anything_]<lab>[-<n>].ipynb`` (docs/INSTRUCTORS.md; the regular
expression is ``c.FileNameCollectorPlugin.named_regexp`` in grader/nbgrader_config.py).
A notebook named after another lab is reported and not collected for this one.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from pathlib import Path

from grader.course import GRADER, SUBMITTED, nbgrader


def collect(archive: Path, lab: str) -> int:
    if not zipfile.is_zipfile(archive):
        print(f"error: {archive} is not a zip archive")
        return 2
    names = [n for n in zipfile.ZipFile(archive).namelist() if n.endswith(".ipynb")]
    others = [n for n in names if not Path(n).stem.split("-")[0].endswith(lab)]
    for name in others:
        print(f"warning: {name} is not named after {lab}.ipynb; it is not collected for {lab}")
    downloaded = GRADER / "downloaded" / lab
    shutil.rmtree(downloaded, ignore_errors=True)
    (downloaded / "archive").mkdir(parents=True)
    shutil.copy2(archive, downloaded / "archive" / archive.name)
    before = {p.parent.parent.name for p in SUBMITTED.glob(f"*/{lab}/{lab}.ipynb")}
    status = nbgrader("zip_collect", lab, "--force", "--log-level=WARN")
    # a file of another lab would land next to this lab's notebook; remove it
    for stray in SUBMITTED.glob(f"*/{lab}/*.ipynb"):
        if stray.stem != lab:
            stray.unlink()
    after = sorted(p.parent.parent.name for p in SUBMITTED.glob(f"*/{lab}/{lab}.ipynb"))
    print(f"collected {len(after)} submission(s) of {lab} into {SUBMITTED}/<student>/{lab}/"
          f" ({len(set(after) - before)} new): {', '.join(after)}")
    return 1 if status or not after else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", type=Path, required=True, help="the LMS download (a .zip of notebooks)")
    parser.add_argument("--lab", required=True, help="the lab these submissions are for, e.g. 01_value")
    args = parser.parse_args(argv)
    return collect(args.zip.resolve(), args.lab)


if __name__ == "__main__":
    sys.exit(main())
