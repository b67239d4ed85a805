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
    assert verdict(graded(recorded("f_1", 2.5)), expected) == (False, ["check 'f_1' does not match the expected result"])


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


# ---------------------------------------------------------------- judges: the CIFAR-10 test accuracy
def test_cifar10_accuracy_judge_scores_recorded_predictions_against_the_grader_s_labels():
    import pytest
    from grader import verdicts
    from micrograd_plus.data import DatasetError
    try:
        labels = verdicts.cifar10_test_labels()
    except DatasetError as error:
        pytest.skip(f"CIFAR-10 is not available here: {error}")
    assert len(labels) == 10000 and set(labels) == set(range(10))
    want = {"name": "p", "kind": "array", "shape": [1], "value": [0.0], "judge": "cifar10_test_accuracy", "threshold": 0.7}

    def got(values):
        return {"name": "p", **plain(values)}
    right = list(labels)
    assert matches(want, got(right))
    wrong = [(y + 1) % 10 for y in labels]
    seventy = right[:7000] + wrong[7000:]                 # exactly 70%: not more than 70%
    assert not matches(want, got(seventy))
    assert matches(want, got(right[:7001] + wrong[7001:]))
    assert not matches(want, got(right[:9999]))           # wrong length
    assert not matches(want, got([y + 0.5 for y in right]))  # not class indices
    assert not matches(want, got([10] + right[1:]))       # out of range
    assert not matches(want, {"name": "p", "kind": "str", "value": "0.99"})
    assert not matches({**want, "judge": "no_such_judge"}, got(right))
    # the submission cannot choose the judge: only the reference's record names it
    plain_want = {"name": "p", "kind": "array", "shape": [3], "value": [1.0, 2.0, 3.0], "rtol": 1e-6, "atol": 0.0}
    assert not matches(plain_want, {**got([1, 2, 4]), "judge": "cifar10_test_accuracy", "threshold": 0.0})
