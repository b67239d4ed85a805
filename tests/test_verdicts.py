"""The scoring rule of grader/verdicts.py on hand-made executed cells (no kernel, no sandbox)."""

import json

from nbformat.v4 import new_code_cell, new_output

from grader.checks import MIME, plain
from grader.verdicts import matches, records, verdict


def graded(*outputs):
    cell = new_code_cell("assert f(1) == 2")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "test_f", "points": 2}
    cell.outputs = list(outputs)
    return cell


def recorded(name, value, **tolerance):
    return new_output("display_data", data={MIME: json.dumps({"name": name, **plain(value), **tolerance})})


ERROR = new_output("error", ename="AssertionError", evalue="f(1) should be 2", traceback=[])
RESULT = new_output("execute_result", data={"text/plain": "1.0"}, execution_count=1)
WARNING = new_output("stream", name="stderr", text="RuntimeWarning: overflow encountered in exp\n")


def test_an_error_fails_the_cell_and_a_result_before_it_does_not_rescue_it():
    assert verdict(graded(RESULT, ERROR), None) == (False, ["AssertionError: f(1) should be 2"])
    assert verdict(graded(ERROR, RESULT), None)[0] is False


def test_a_warning_on_stderr_does_not_fail_the_cell():
    assert verdict(graded(WARNING), None) == (True, [])


def test_every_expected_check_must_be_recorded_and_match():
    expected = {"f_1": {"name": "f_1", **plain(2.0), "rtol": 1e-6, "atol": 1e-8}}
    assert verdict(graded(recorded("f_1", 2.0)), expected) == (True, [])
    assert verdict(graded(), expected) == (False, ["check 'f_1' was not recorded"])
    assert verdict(graded(recorded("f_1", 2.5)), expected) == (
        False,
        ["check 'f_1' does not match the expected result"],
    )


def test_the_first_record_of_a_name_counts_and_malformed_ones_are_ignored():
    junk = new_output("display_data", data={MIME: "{not json"})
    cell = graded(junk, recorded("f_1", 1.0), recorded("f_1", 2.0))
    assert records(cell)["f_1"]["value"] == [1.0]


def test_kinds_shapes_and_special_values():
    want = {"kind": "array", "shape": [3], "value": [1.0, "nan", "inf"], "rtol": 1e-6, "atol": 0.0}
    assert matches(want, {"kind": "array", "shape": [3], "value": [1.0, "nan", "inf"]})
    assert not matches(want, {"kind": "array", "shape": [3], "value": [1.0, 0.0, "inf"]})
    assert not matches(want, {"kind": "str", "value": "1.0"})
    assert not matches({"kind": "bool", "value": True}, {"kind": "bool", "value": 1})
    assert not matches(want, "anything")


def test_recorded_predictions_are_scored_by_accuracy_on_labels_the_grader_loads():
    from grader.verdicts import accuracy_at_least

    want = {"name": "pred", **plain([0, 1, 2, 3, 4]), "accuracy": {"labels": "mnist-test", "min": 0.8}}
    labels = [0, 1, 2, 3, 4]
    assert accuracy_at_least(want, plain([0, 1, 2, 3, 0]), labels=labels)  # 4 of 5 right: 0.8
    assert not accuracy_at_least(want, plain([0, 1, 2, 0, 0]), labels=labels)  # 0.6
    assert not accuracy_at_least(want, plain([0, 1, 2, 3]), labels=labels)  # a prediction missing
    assert not accuracy_at_least(want, plain("0 1 2 3 4"), labels=labels)  # not predictions
    forged = {**plain([9, 9, 9, 9, 9]), "accuracy": {"labels": "mnist-test", "min": 0.0}}
    assert not accuracy_at_least(want, forged, labels=labels)  # its own threshold is ignored


def test_accuracy_records_use_the_real_mnist_test_labels():
    import numpy as np
    import pytest
    from grader.verdicts import mnist_test_labels

    try:
        labels = mnist_test_labels()
    except Exception as error:  # no MNIST here
        pytest.skip(f"MNIST is not available: {error}")
    want = {"name": "pred", "kind": "array", "shape": [10000], "accuracy": {"labels": "mnist-test", "min": 0.95}}
    right = labels.astype(np.float64)
    wrong = right.copy()
    wrong[:600] = (wrong[:600] + 1) % 10  # 94 % right
    assert matches(want, plain(right)) and not matches(want, plain(wrong))
    assert matches(want, plain(np.concatenate([wrong[:400], right[400:]])))  # 96 % right


def test_accuracy_records_use_the_real_cifar10_test_labels():
    import numpy as np
    import pytest
    from grader.verdicts import cifar10_test_labels
    from micrograd_plus.data import DatasetError

    try:
        labels = np.asarray(cifar10_test_labels())
    except DatasetError as error:
        pytest.skip(f"CIFAR-10 is not available here: {error}")
    assert labels.shape == (10000,) and set(labels.tolist()) == set(range(10))
    want = {"name": "p", "kind": "array", "shape": [10000], "accuracy": {"labels": "cifar10-test", "min": 0.7}}
    right = labels.astype(np.float64)
    wrong = (right + 1) % 10
    assert matches(want, plain(right))
    assert not matches(want, plain(np.concatenate([right[:6999], wrong[6999:]])))  # 69.99 %
    assert matches(want, plain(np.concatenate([right[:7000], wrong[7000:]])))  # 70 %
    assert not matches(want, plain(right[:9999]))  # a prediction missing
    assert not matches(want, plain(right + 0.5))  # not class indices
    assert not matches(want, {"name": "p", "kind": "str", "value": "0.99"})
    # the submission cannot turn an equality check into an accuracy check
    plain_want = {"name": "p", "kind": "array", "shape": [3], "value": [1.0, 2.0, 3.0], "rtol": 1e-6, "atol": 0.0}
    assert not matches(plain_want, {**plain([1, 2, 4]), "accuracy": {"labels": "cifar10-test", "min": 0.0}})
