"""Recording what a graded test cell computed, for the grader to judge outside the kernel.

A graded cell keeps its visible ``assert`` for the learner and also *records* the
results it checks, reduced to plain data::

    from grader.checks import record
    record("relu_values", relu(x))          # a Tensor, array, float, int, bool or str

The grader runs the solution notebook through the same sandbox to obtain the expected
data for every recorded name, and compares them in its own process (no learner code
runs there). Nothing the submission does in its kernel can make a recorded value match
except computing it. The expected values never enter the kernel.

Outside grading (``make lab``, nbval) recording is a no-op: a graded cell imports it as::

    try:
        from grader.checks import record
    except ImportError:
        def record(*args, **kwargs): pass
"""

from __future__ import annotations

import json
import os

MIME = "application/vnd.micrograd-plus.check+json"


def plain(value):
    """``value`` as JSON data: a str, a bool, or a list/number of float64 (Tensors by their data).

    >>> plain([[1, 2], [3, 4.5]])
    {'kind': 'array', 'shape': [2, 2], 'value': [1.0, 2.0, 3.0, 4.5]}
    >>> plain("ValueError")
    {'kind': 'str', 'value': 'ValueError'}
    """
    import numpy as np

    if isinstance(value, str):
        return {"kind": "str", "value": str.__str__(value)}
    if isinstance(value, bool):
        return {"kind": "bool", "value": bool(value)}

    def unwrap(v):  # a Tensor/Value by its data; arrays and numbers as they are
        return v if isinstance(v, (np.ndarray, np.generic, int, float)) else getattr(v, "data", v)

    data = [unwrap(v) for v in value] if isinstance(value, (list, tuple)) else unwrap(value)
    array = np.array(data, dtype=np.float64)
    return {
        "kind": "array",
        "shape": list(array.shape),
        "value": [float(x) if np.isfinite(x) else repr(float(x)) for x in array.ravel().tolist()],
    }


def record(
    name: str,
    value,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    labels: str | None = None,
    min_accuracy: float | None = None,
) -> None:
    """Record ``value`` under ``name`` for the grader (see the module docstring).

    ``rtol``/``atol`` are read only from the reference solution's record: a submission
    cannot loosen them.

    Predicted class labels are judged by accuracy instead of equality: with
    ``labels="mnist-test"`` (a label set the grader loads itself, see
    ``grader.verdicts.LABEL_SETS``) and ``min_accuracy=0.95`` the check passes when at least
    that fraction of the predictions equals the true labels. Only the reference's
    ``labels``/``min_accuracy`` count.
    """
    if not os.environ.get("MICROGRAD_PLUS_SANDBOX"):
        return
    from IPython.display import display

    payload = {"name": str(name), "rtol": float(rtol), "atol": float(atol), **plain(value)}
    if labels is not None:
        payload["accuracy"] = {"labels": str(labels), "min": float(min_accuracy if min_accuracy is not None else 1.0)}
    display({MIME: json.dumps(payload)}, raw=True)
