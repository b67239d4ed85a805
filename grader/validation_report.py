"""What a learner reads after validating a lab: ``make validate`` and the *Validate* button.

Both start from the results of nbgrader's ``Validator.validate`` (a dict with ``failed``,
``changed`` or ``type_changed`` cells, empty when every visible test passes) and say, in
this order: how many graded test cells fail, each failing cell's own message (the
assertion message the test wrote for the learner), then the tracebacks. A pass says that
hidden tests run at grading.

>>> results = {"failed": [{"source": "assert add(2, 2) == 4, 'add(2, 2): expected 4'",
...                        "raw_error": "Traceback ...\\nAssertionError: add(2, 2): expected 4, got 5"}]}
>>> print(text(results, None).splitlines()[0])
VALIDATION FAILED: 1 test cell fails.
>>> failing_cells(results, None)[0]["message"]
'AssertionError: add(2, 2): expected 4, got 5'
"""

from __future__ import annotations

import html
import json
import re
import textwrap
from pathlib import Path

HIDDEN_NOTE = "Hidden tests run when the lab is graded: passing here is necessary, not sufficient."
PASS_TEXT = "Every visible test passes. " + HIDDEN_NOTE
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# the line that starts an exception's "Name: message" (IPython's last traceback entry)
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))(?::|$)")
_STUB_HINT = "a `# YOUR CODE HERE` stub that this test uses is not filled in yet"


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def learner_message(raw_error: str) -> str:
    """The exception line(s) of a traceback: ``AssertionError: <what the test says>``.

    >>> learner_message("Traceback\\n  File x\\nAssertionError: expected 4\\n  got 5")
    'AssertionError: expected 4\\n  got 5'
    >>> learner_message("\\x1b[0;31mNotImplementedError\\x1b[0m: ")
    'NotImplementedError: a `# YOUR CODE HERE` stub that this test uses is not filled in yet'
    """
    lines = strip_ansi(raw_error).rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        match = _EXCEPTION_LINE.match(lines[i])
        if match:
            message = "\n".join(lines[i:]).strip()
            if match.group(1) == "NotImplementedError" and message.rstrip(":") == "NotImplementedError":
                message = f"NotImplementedError: {_STUB_HINT}"
            return message
    return lines[-1].strip() if lines else "the cell failed"


def _graded_cells(notebook: Path | None) -> list[dict]:
    if notebook is None or not Path(notebook).exists():
        return []
    cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    graded = []
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and cell.get("cell_type") == "code":
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            graded.append({"source": source.strip(), "grade_id": meta.get("grade_id"), "points": meta.get("points")})
    return graded


def failing_cells(results: dict, notebook: Path | None) -> list[dict]:
    """One entry per failing graded cell: name, points, learner message, traceback, source, error HTML."""
    by_source = {c["source"]: c for c in _graded_cells(notebook)}
    out = []
    for n, cell in enumerate(results.get("failed", []), 1):
        known = by_source.get(cell["source"].strip(), {})
        out.append(
            {
                "name": known.get("grade_id") or f"test cell {n}",
                "points": known.get("points"),
                "message": learner_message(cell.get("raw_error", "")),
                "traceback": strip_ansi(cell.get("raw_error", "")).strip(),
                "source": cell["source"],
                "error": cell.get("error", html.escape(strip_ansi(cell.get("raw_error", "")))),
            }
        )
    return out


def _title(entry: dict) -> str:
    points = entry["points"]
    return entry["name"] + (
        f" ({points:g} point{'' if points == 1 else 's'})" if isinstance(points, (int, float)) else ""
    )


def _count(failed: list, notebook: Path | None) -> str:
    total = len(_graded_cells(notebook))
    if total >= len(failed) and total:
        return f"{len(failed)} of {total} test cells fail"
    return f"{len(failed)} test cell fails" if len(failed) == 1 else f"{len(failed)} test cells fail"


def summary(results: dict, notebook: Path | None) -> str:
    """The count and every failing cell's message, numbered (the head of both reports)."""
    failed = failing_cells(results, notebook)
    rows = [f"{_count(failed, notebook)}."]
    for n, entry in enumerate(failed, 1):
        rows.append(f"{n:>3}. {_title(entry)}")
        rows.append(textwrap.indent(entry["message"], "     "))
    return "\n".join(rows)


def _excerpt(text: str, lines: int) -> str:
    rows = text.strip().splitlines()
    more = [f"... ({len(rows) - lines} more lines)"] if len(rows) > lines else []
    return textwrap.indent("\n".join(rows[:lines] + more), "    ")


def text(results: dict, notebook: Path | None) -> str:
    """The report of ``make validate``."""
    name = f" for {Path(notebook).name}" if notebook else ""
    if not results:
        return f"PASSED{name}: {PASS_TEXT}"
    out = []
    if results.get("type_changed"):
        out.append(f"VALIDATION FAILED{name}: {len(results['type_changed'])} cell(s) changed type; restore them.")
        for cell in results["type_changed"]:
            out.append(
                f"\nCHANGED CELL TYPE ({cell['old_type']} -> {cell['new_type']}):\n{_excerpt(cell['source'], 12)}"
            )
    if results.get("changed"):
        out.append(
            f"VALIDATION FAILED{name}: {len(results['changed'])} locked cell(s) changed; the grader "
            "restores them, so your edits there are lost. Undo them (or copy the cell from labs/)."
        )
        for cell in results["changed"]:
            out.append(f"\nLOCKED CELL CHANGED:\n{_excerpt(cell['source'], 12)}")
    if results.get("failed"):
        out.append(f"VALIDATION FAILED{name}: {summary(results, notebook)}")
        out.append(HIDDEN_NOTE)
        for n, entry in enumerate(failing_cells(results, notebook), 1):
            out.append(
                f"\nFAILED TEST {n}. {_title(entry)}\n{_excerpt(entry['source'], 12)}\n  traceback:\n"
                f"{_excerpt(entry['traceback'], 25)}"
            )
    return "\n".join(out)


def dialog_value(results: dict, notebook: Path | None) -> dict:
    """The ``value`` the *Validate* button's dialog renders (nbgrader's labextension).

    The labextension shows one block per ``failed`` entry (its ``source`` as text, its
    ``error`` as HTML): the first block is the summary (count and messages), then one block
    per failing cell with its traceback. A pass keeps nbgrader's shape ``{}``; the
    learner server's stylesheet (grader/learner_lab.css) words it with ``PASS_TEXT``.
    """
    if not results.get("failed") or results.get("changed") or results.get("type_changed"):
        return results
    entries = [
        {
            "source": summary(results, notebook) + "\n\n" + HIDDEN_NOTE,
            "error": "<em>The failing test cells follow, each with its traceback.</em>",
        }
    ]
    for n, entry in enumerate(failing_cells(results, notebook), 1):
        entries.append({"source": f"{n}. {_title(entry)}\n\n{entry['source']}", "error": entry["error"]})
    return {"failed": entries}
