"""The scoring rule, applied by the trusted grader process to an executed notebook.

No learner code runs here: only the cell outputs the sandbox produced (plain JSON) are read.

A graded code cell earns its points when

1. it has no ``error`` output (an ``execute_result`` never rescues an error, and output on
   stderr, warnings included, never fails a cell by itself), and
2. every check the reference solution records in that cell (``grader.checks.record``) was
   recorded by the submission with the same kind and shape and values within the
   reference's tolerance; a check the reference recorded with ``labels=``/``min_accuracy=``
   (predicted classes) passes when the predictions reach that accuracy on labels this
   process loads itself (:func:`accuracy_at_least`).

Otherwise it scores 0, with a message saying why (the check's name only, never the
expected value).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from grader.checks import MIME

MAX_RECORD = 5_000_000  # characters of one recorded payload


def is_graded_code(cell) -> bool:
    nbg = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(nbg.get("grade")) and not nbg.get("solution")


def records(cell) -> dict[str, dict]:
    """name -> payload of the checks recorded in a cell's outputs (malformed ones ignored)."""
    found = {}
    for output in cell.get("outputs", []):
        text = (
            output.get("data", {}).get(MIME)
            if output.get("output_type") in ("display_data", "execute_result")
            else None
        )
        if not isinstance(text, str) or len(text) > MAX_RECORD:
            continue
        try:
            payload = json.loads(text)
        except ValueError:
            continue
        if isinstance(payload, dict) and isinstance(payload.get("name"), str) and payload["name"] not in found:
            found[payload["name"]] = payload
    return found


def _number(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float, str)):
        return None
    try:
        return float(x)
    except ValueError:
        return None


def mnist_test_labels():
    """The 10 000 labels of MNIST's official test set, read and checksum-verified here (trusted side)."""
    from micrograd_plus import data

    folder = data.fetch("mnist", progress=False)
    spec = data.MNIST.files[3]
    return data.read_idx(data.verify_file(folder / spec.name, spec))


def cifar10_test_labels():
    """The 10 000 labels of the official CIFAR-10 test batch, read and checksum-verified here (trusted side)."""
    from micrograd_plus import data

    folder = data.data_root() / data.CIFAR10.name
    spec = next(f for f in data.CIFAR10.files if f.name == "test_batch.bin")
    if not (folder / spec.name).is_file():
        data.fetch(data.CIFAR10)
    _, labels = data._read_cifar_batch(data.verify_file(folder / spec.name, spec))
    return labels


# label sets a recorded check can be scored against (``record(..., labels=NAME, min_accuracy=...)``)
LABEL_SETS = {"mnist-test": mnist_test_labels, "cifar10-test": cifar10_test_labels}
_LABELS_CACHE: dict[str, list[float]] = {}


def accuracy_at_least(expected: dict, got: dict | None, labels=None) -> bool:
    """Are the learner's recorded class predictions right on at least the reference's
    ``min`` fraction of the true labels? The labels are loaded here (``LABEL_SETS``), never
    taken from the notebook; ``labels`` overrides them (tests).

    >>> want = {"kind": "array", "shape": [4], "accuracy": {"labels": "toy", "min": 0.7}}
    >>> accuracy_at_least(want, {"kind": "array", "shape": [4], "value": [0, 1, 2, 0]}, labels=[0, 1, 2, 3])
    True
    >>> accuracy_at_least(want, {"kind": "array", "shape": [4], "value": [0, 1, 0, 0]}, labels=[0, 1, 2, 3])
    False
    """
    rule = expected.get("accuracy") or {}
    if not isinstance(got, dict) or got.get("kind") != "array" or got.get("shape") != expected.get("shape"):
        return False
    if labels is None:
        name = rule.get("labels")
        if name not in LABEL_SETS:
            raise ValueError(f"unknown label set {name!r} in the reference's record; known: {sorted(LABEL_SETS)}")
        if name not in _LABELS_CACHE:
            _LABELS_CACHE[name] = [float(x) for x in LABEL_SETS[name]().tolist()]
        labels = _LABELS_CACHE[name]
    predictions = [_number(x) for x in got.get("value") or []]
    if len(predictions) != len(labels) or any(p is None for p in predictions):
        return False
    correct = sum(p == float(y) for p, y in zip(predictions, labels))
    return correct >= float(rule.get("min", 1.0)) * len(labels)


def matches(expected: dict, got: dict | None) -> bool:
    """Does a learner's payload match the reference's (the reference's tolerance)?

    >>> want = {"kind": "array", "shape": [2], "value": [1.0, 2.0], "rtol": 1e-6, "atol": 0.0}
    >>> matches(want, {"kind": "array", "shape": [2], "value": [1.0, 2.000001]})
    True
    >>> matches(want, {"kind": "array", "shape": [2], "value": [1.0, 2.1], "rtol": 1.0})  # its own rtol is ignored
    False
    >>> matches(want, {"kind": "array", "shape": [1, 2], "value": [1.0, 2.0]})
    False
    """
    if expected.get("accuracy"):
        return accuracy_at_least(expected, got)
    if not isinstance(got, dict) or got.get("kind") != expected.get("kind"):
        return False
    if expected["kind"] in ("str", "bool"):
        return type(got.get("value")) is type(expected["value"]) and got.get("value") == expected["value"]
    if got.get("shape") != expected.get("shape") or not isinstance(got.get("value"), list):
        return False
    want, have = expected["value"], got["value"]
    if len(want) != len(have):
        return False
    rtol, atol = float(expected.get("rtol", 1e-6)), float(expected.get("atol", 1e-8))
    for w, h in zip(want, have):
        w, h = _number(w), _number(h)
        if w is None or h is None:
            return False
        if math.isnan(w) or math.isnan(h):
            if not (math.isnan(w) and math.isnan(h)):
                return False
        elif math.isinf(w) or math.isinf(h):
            if w != h:
                return False
        elif not abs(h - w) <= atol + rtol * abs(w):
            return False
    return True


def verdict(cell, expected: dict[str, dict] | None) -> tuple[bool, list[str]]:
    """(passed, messages) of one executed graded code cell."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        return False, [f"{errors[0].get('ename', 'Error')}: {str(errors[0].get('evalue', ''))[:300]}"]
    got = records(cell)
    failed = sorted(name for name, want in (expected or {}).items() if not matches(want, got.get(name)))
    if failed:
        return False, [
            f"check '{name}' " + ("was not recorded" if name not in got else "does not match the expected result")
            for name in failed
        ]
    return True, []


# ---------------------------------------------------------------- the reference's records
def solution_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def uses_records(nb) -> bool:
    return any(is_graded_code(c) and "record(" in c.source for c in nb.cells)


def reference_records(root: Path, lab: str, cell_timeout: int) -> dict[str, dict[str, dict]]:
    """grade_id -> name -> payload that the solution notebook records, run through the same
    sandbox. Cached in ``grader/reference/<lab>.json`` (keyed by the notebook's digest);
    ``{}`` for a lab whose graded cells record nothing."""
    import nbformat
    from grader import sandbox

    path = root / "solutions" / lab / f"{lab}.ipynb"
    nb = nbformat.read(path, as_version=4)
    if not uses_records(nb):
        return {}
    cache = root / "grader" / "reference" / f"{lab}.json"
    digest = solution_digest(path)
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("digest") == digest:
            return saved["records"]
    print(f"running the reference solution of {lab} in the sandbox for its recorded checks", flush=True)
    outcome = sandbox.execute(nb, root, lab, cell_timeout, lab_files=path.parent)
    if outcome.notebook is None:
        raise RuntimeError(f"the reference solution of {lab} could not be run: {outcome.reason}\n{outcome.log}")
    result, broken = {}, []
    for cell in outcome.notebook.cells:
        if is_graded_code(cell):
            grade_id = cell.metadata.nbgrader["grade_id"]
            passed, why = verdict(cell, None)
            if not passed:
                broken.append(f"{grade_id}: {why}")
            result[grade_id] = records(cell)
    if broken:
        raise RuntimeError(f"the reference solution of {lab} fails its own graded cells: {broken}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"digest": digest, "records": result}))
    return result
