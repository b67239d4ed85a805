"""Write the grade sheet and the LMS import files from the gradebook.

``make grades [LAB=01_value]``

- ``grader/grades.csv`` (long format): student, lab, score, max_score, status. ``status``
  is ``graded``, ``needs manual grading`` (nbgrader flagged a cell, e.g. a manual grade
  overrides it), ``not graded: <reason>`` (the sandbox could not execute the submission:
  killed, stopped, hung, out of memory; score 0 until it is regraded) or ``not submitted``
  (score 0).
- ``grader/grades-canvas.csv``: Canvas's gradebook import: the columns ``Student``, ``ID``
  (Canvas user id), ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column per lab,
  and a ``Points Possible`` row. Learners collected from Canvas file names only (others
  have no Canvas id; they are counted in the output).
- ``grader/grades-moodle.csv``: Moodle's grade import (Grades > Import > CSV file): one row
  per learner with ``Full name``, ``Email address`` (from ``grader/learners.csv``; fill it in
  once from Moodle's participants list, Moodle identifies users by it) and one column per lab;
  and per lab ``grader/grades-moodle-<lab>.csv``, Moodle's offline grading worksheet
  (``Identifier`` = ``Participant <id>`` from the download's file names, ``Full name``,
  ``Grade``, ``Maximum Grade``), which needs no e-mail address.

A lab is in the files once somebody has submitted it (labs nobody has handed in yet, e.g.
not released, are left out); ``LAB=`` keeps one lab. Every learner of the gradebook gets a
row; a lab they did not submit scores 0.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from grader.collect import LEARNERS, read_learners
from grader.course import GRADER, ROOT, gradebook, gradebook_exists
from grader.hardening import read_status

FIELDS = ["student", "lab", "score", "max_score", "status"]
CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_FIXED = ["Full name", "Email address"]
WORKSHEET = ["Identifier", "Full name", "Grade", "Maximum Grade"]


def number(value) -> str:
    return f"{float(value):g}"


def rows(lab: str | None = None) -> list[dict]:
    """One row per learner and lab that somebody submitted (``lab``: that one only)."""
    from nbgrader.api import MissingEntry

    out, executed = [], read_status(ROOT)
    with gradebook() as gb:
        labs = sorted(a.name for a in gb.assignments if a.num_submissions > 0 and (not lab or a.name == lab))
        maxima = {name: gb.find_assignment(name).max_score for name in labs}
        for student in sorted(s.id for s in gb.students):
            for name in labs:
                try:
                    sub = gb.find_submission(name, student)
                except MissingEntry:
                    out.append(
                        {
                            "student": student,
                            "lab": name,
                            "score": 0,
                            "max_score": maxima[name],
                            "status": "not submitted",
                        }
                    )
                    continue
                status = "needs manual grading" if sub.needs_manual_grade else "graded"
                state = executed.get(student, {}).get(name, {}).get("status", "graded")
                if state != "graded":
                    status = state
                out.append(
                    {"student": student, "lab": name, "score": sub.score, "max_score": sub.max_score, "status": status}
                )
    return out


def wide(table: list[dict]) -> tuple[list[str], dict[str, dict[str, str]], dict[str, str]]:
    """(labs, student -> lab -> score, lab -> max score) from the long table."""
    labs = sorted({r["lab"] for r in table})
    scores: dict[str, dict[str, str]] = {}
    maxima = {}
    for r in table:
        scores.setdefault(r["student"], {})[r["lab"]] = number(r["score"])
        maxima[r["lab"]] = number(r["max_score"])
    return labs, scores, maxima


def write_long(table: list[dict], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for row in table:
            writer.writerow({**row, "score": number(row["score"]), "max_score": number(row["max_score"])})


def write_canvas(table: list[dict], learners: dict[str, dict], path: Path) -> tuple[int, list[str]]:
    """Canvas's gradebook import; returns (rows written, learners left out for want of a Canvas id)."""
    labs, scores, maxima = wide(table)
    missing = [s for s in scores if learners.get(s, {}).get("lms") != "canvas" or not learners[s]["lms_user_id"]]
    written = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CANVAS_FIXED + labs)
        writer.writerow(["Points Possible", "", "", "", ""] + [maxima[lab] for lab in labs])
        for student in sorted(set(scores) - set(missing)):
            who = learners[student]
            writer.writerow(
                [who["name"] or student, who["lms_user_id"], "", "", ""] + [scores[student][lab] for lab in labs]
            )
            written += 1
    return written, missing


def write_moodle(table: list[dict], learners: dict[str, dict], path: Path) -> tuple[int, list[str]]:
    """Moodle's grade import (one row per learner); returns (rows, learners without an e-mail address)."""
    labs, scores, _ = wide(table)
    no_email = [s for s in scores if not learners.get(s, {}).get("email")]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(MOODLE_FIXED + labs)
        for student in sorted(scores):
            who = learners.get(student, {})
            writer.writerow([who.get("name") or student, who.get("email", "")] + [scores[student][lab] for lab in labs])
    return len(scores), no_email


def participants(lab: str) -> dict[str, str]:
    path = GRADER / "downloaded" / lab / "participants.csv"
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["student"]: row["participant_id"] for row in csv.DictReader(f)}


def write_worksheets(table: list[dict], learners: dict[str, dict], folder: Path) -> list[Path]:
    """Moodle's offline grading worksheet per lab, for the learners collected from Moodle."""
    labs, scores, maxima = wide(table)
    written = []
    for lab in labs:
        ids = participants(lab)
        if not ids:
            continue
        path = folder / f"grades-moodle-{lab}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(WORKSHEET)
            for student in sorted(s for s in scores if s in ids):
                name = learners.get(student, {}).get("name") or student
                writer.writerow([f"Participant {ids[student]}", name, scores[student][lab], maxima[lab]])
        written.append(path)
    return written


def write(path: Path = GRADER / "grades.csv", lab: str | None = None) -> list[dict]:
    table = rows(lab)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_long(table, path)
    learners = read_learners(LEARNERS)
    canvas, no_canvas = write_canvas(table, learners, path.with_name("grades-canvas.csv"))
    moodle, no_email = write_moodle(table, learners, path.with_name("grades-moodle.csv"))
    sheets = write_worksheets(table, learners, path.parent)
    students = len({r["student"] for r in table})
    labs = sorted({r["lab"] for r in table})
    print(f"wrote {path}: {len(table)} row(s), {students} learner(s), labs: {', '.join(labs) or 'none submitted yet'}")
    print(
        f"wrote {path.with_name('grades-canvas.csv')}: {canvas} learner(s) with a Canvas user id"
        + (
            f"; {len(no_canvas)} without one left out ({', '.join(no_canvas[:5])}{' ...' if len(no_canvas) > 5 else ''})"  # noqa: E501
            if no_canvas and canvas
            else ""
        )
    )
    print(
        f"wrote {path.with_name('grades-moodle.csv')}: {moodle} learner(s)"
        + (
            f"; {len(no_email)} without an e-mail address in {LEARNERS.relative_to(ROOT)} (Moodle identifies users by it)"  # noqa: E501
            if no_email and learners
            else ""
        )
    )
    for sheet in sheets:
        print(f"wrote {sheet}: Moodle grading worksheet (Participant ids of the download)")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=GRADER / "grades.csv")
    parser.add_argument("--lab", help="only this lab")
    args = parser.parse_args(argv)
    if not gradebook_exists():
        print("error: no gradebook (grader/gradebook.db): run `make release` and `make autograde` first")
        return 1
    write(args.out, args.lab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
