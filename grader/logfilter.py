"""Keep the grading log to what needs the instructor's attention.

nbgrader's autograde log carries warnings that say nothing about a submission:

- ``Attribute 'checksum' for cell test_x has changed!`` for graded cells the learner did
  not touch: nbgrader checksums the released cell (hidden tests removed) and compares it
  with the gradebook's cell (hidden tests included), so every graded cell with hidden tests
  warns (nbgrader issue #1083). The cell is restored from the gradebook either way; a
  warning is kept only when the submitted cell differs from the released one, i.e. the
  learner really edited or replaced a graded or locked cell;
- SQLAlchemy's ``SAWarning``s about autoflush inside nbgrader, nbformat's
  ``MissingIDFieldWarning`` and ipykernel's ``Kernel is running over TCP without
  encryption`` (each with the source line Python prints under it);
- nbconvert's ``Config option `display_data_priority` not recognized`` in feedback;
- ``Removing existing assignment`` when a submission is regraded (as asked);
- the per-submission progress lines of the sandbox (the progress bar replaces them).

What remains (a changed cell, a late submission, a "not graded" reason, an error) is
shown, prefixed with the learner's id.

>>> f = LogFilter(released={"test_a": "assert f(1) == 2"}, submitted={"test_a": "assert f(1) == 2"})
>>> f.keep("[AutogradeApp | WARNING] Attribute 'checksum' for cell test_a has changed! (should be: 1, got: 2)")
False
>>> f = LogFilter(released={"test_a": "assert f(1) == 2"}, submitted={"test_a": "pass"})
>>> f.keep("[AutogradeApp | WARNING] Attribute 'checksum' for cell test_a has changed! (should be: 1, got: 2)")
True
"""

from __future__ import annotations

import re
from pathlib import Path

CHANGED = re.compile(r"Attribute '(?P<attr>\w+)' for cell (?P<cell>\S+) has changed!")
# a known false positive, and whether Python printed a source line under it
NOISE = (
    (re.compile(r"SAWarning: "), True),
    (re.compile(r"MissingIDFieldWarning: "), True),
    (re.compile(r"Kernel is running over TCP without encryption"), False),
    (re.compile(r"^\s*\[\d+/[\d?]+\] grading \S+ in the sandbox"), False),
    (re.compile(r"^\s*\S+/\S+: graded \([\d.]+ s\)$"), False),
    (re.compile(r"^\s*warn\(|^\s*warnings\.warn\("), False),
    (re.compile(r"Config option `display_data_priority` not recognized"), False),  # nbconvert's, set by nbgrader
    (re.compile(r"WARNING\] Removing existing (assignment|notebook): "), False),  # regrading, as asked
)


def cell_sources(notebook: Path) -> dict[str, str]:
    """grade_id -> source of the notebook's nbgrader cells ({} if it cannot be read)."""
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:
        return {}
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
    }


class LogFilter:
    """Decides line by line what of a grading process's output to show."""

    def __init__(self, released: dict[str, str], submitted: dict[str, str]):
        self.released, self.submitted = released, submitted
        self.dropped = 0

    @classmethod
    def for_submission(cls, root: Path, lab: str, student: str) -> LogFilter:
        return cls(
            cell_sources(root / "labs" / lab / f"{lab}.ipynb"),
            cell_sources(root / "grader" / "submitted" / student / lab / f"{lab}.ipynb"),
        )

    def keep(self, line: str) -> bool:
        changed = CHANGED.search(line)
        if changed:
            name = changed.group("cell")
            untouched = name in self.released and self.submitted.get(name) == self.released[name]
            return not untouched
        return not any(pattern.search(line) for pattern, _ in NOISE)

    def filter(self, text: str) -> list[str]:
        kept, skip_next = [], False
        for line in text.splitlines():
            if skip_next:
                skip_next = False
                if line.startswith("  "):  # the source line Python prints under a warning
                    self.dropped += 1
                    continue
            if not line.strip():
                continue
            noise = next((follows for pattern, follows in NOISE if pattern.search(line)), None)
            if noise is not None or not self.keep(line):
                self.dropped += 1
                skip_next = bool(noise)
                continue
            kept.append(line)
        return kept

    def explain(self, line: str) -> str:
        """A kept line, reworded where nbgrader's wording misleads."""
        changed = CHANGED.search(line)
        if changed:
            return (
                f"WARNING: the submission changed graded/locked cell {changed.group('cell')} "
                f"({changed.group('attr')} differs from the release); it was restored from the gradebook "
                "before grading. Look at the submission if this was not a merge accident."
            )
        return line.strip()
