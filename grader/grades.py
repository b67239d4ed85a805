"""Write ``grader/grades.csv``: one row per student and lab, from the gradebook.

``python -m grader.grades [--out path.csv]``

Columns: student, lab, score, max_score, status. ``status`` is ``graded``,
``needs manual grading`` (nbgrader flagged a cell, e.g. a manual grade overrides it),
``not graded: <reason>`` (the sandbox could not execute the submission: killed, stopped,
hung, out of memory; score 0 until it is regraded) or ``not submitted`` (score 0). Every student in the gradebook gets a row for every lab.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from grader.course import GRADER, ROOT, gradebook
from grader.hardening import read_status

FIELDS = ["student", "lab", "score", "max_score", "status"]


def rows() -> list[dict]:
    from nbgrader.api import MissingEntry
    out, executed = [], read_status(ROOT)
    with gradebook() as gb:
        labs = sorted(a.name for a in gb.assignments)
        for student in sorted(s.id for s in gb.students):
            for lab in labs:
                assignment = gb.find_assignment(lab)
                try:
                    sub = gb.find_submission(lab, student)
                except MissingEntry:
                    out.append(dict(student=student, lab=lab, score=0, max_score=assignment.max_score,
                                    status="not submitted"))
                    continue
                status = "needs manual grading" if sub.needs_manual_grade else "graded"
                state = executed.get(student, {}).get(lab, {}).get("status", "graded")
                if state != "graded":
                    status = state
                out.append(dict(student=student, lab=lab, score=sub.score, max_score=sub.max_score, status=status))
    return out


def write(path: Path = GRADER / "grades.csv") -> list[dict]:
    table = rows()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for row in table:
            writer.writerow({**row, "score": f"{row['score']:g}", "max_score": f"{row['max_score']:g}"})
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=GRADER / "grades.csv")
    args = parser.parse_args(argv)
    if not gradebook_exists():
        print("error: no gradebook (grader/gradebook.db): run `make release` and `make autograde` first")
        return 1
    table = write(args.out)
    students = len({r["student"] for r in table})
    print(f"wrote {args.out}: {len(table)} row(s), {students} student(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
