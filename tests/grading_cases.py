"""The labs the grader test suite (tests/test_grading.py) autogrades, one entry per lab.

Adding a lab to the suite = adding one ``LabCase`` to ``CASES``. Each entry names the
parts of the lab that the broken submissions mutate; every mutation is a plain text
edit of the reference solution (or of the blank release), so the expected score of
each submission follows from the points of the graded cells it names:

- ``blank``      the released notebook as is: scores ``blank_score`` (0), the batch goes on;
- ``pass_cell``  the release with graded cell ``blank_cell`` rewritten to ``pass``: restored, 0;
- ``deleted``    the reference with graded cell ``delete_cell`` deleted: loses its points;
- ``loop``       ``while True: pass`` at the top of function ``loop_function``: the graded
                 cells ``loop_cells`` (which call it) time out, everything else is graded;
- ``exit``       ``sys.exit(0)`` there instead: ``loop_cells`` fail;
- ``os_exit``    ``os._exit(0)`` there (the kernel dies): every graded cell from the first
                 of ``loop_cells`` on scores 0;
- ``import_error`` ``raise RuntimeError`` at the top of the first solution cell;
- ``hidden``     the substitution ``hidden_bug`` (old, new) in the solution: ``make validate``
                 passes, the graded cells ``hidden_cells`` lose their points at autograde;
- ``allclose``   the substitution ``allclose_bug`` breaks what ``allclose_cells`` check with
                 ``np.allclose``, and the submission sets ``numpy.allclose = lambda *a, **k: True``;
- ``import_reference`` every solution cell only imports the lab's module ``reference_module``
                 from the installed package (``from micrograd_plus.layers import *``): the
                 sandbox's package has the learner edition (stubs) of the lab being
                 graded, so it scores what the blank release scores;
- ``gradcheck``  the substitution ``gradcheck_bug`` breaks what ``gradcheck_cells`` check with
                 the helpers ``gradcheck_names`` (default ``check_gradient``) of ``gradcheck_module``,
                 which the submission replaces by functions that always pass (module attribute and
                 global name), at the end of the code cell containing ``gradcheck_cell`` (default:
                 the last solution cell).

- ``alt_<style>`` for each style in ``alternatives``: a correct submission written in another style than the
                 reference (``tests/alternative_submissions.py``): full marks.

``full_run_cells``: graded cells that need what only a long run outside the suite produces: lab 10's accuracy
cell needs the handed-in weights of the full training run (more than 70% on the CIFAR-10 test set: the
``min_accuracy`` the reference records). The suite's submissions hand in no weights and train only the short
run (``solutions/10_conv/short_run.json`` holds its bound for the visible check), so these cells score 0 in
every submission: the short run's weights never earn the accuracy points.

``timeout`` is the cell timeout (seconds) for the lab's submissions in the suite: above
the lab's slowest graded cell, small enough for the infinite loop to be cheap.
``kinds`` lists the submissions to run (a lab whose notebook runs long may run fewer).

``00_toy`` is the suite's own lab (written by ``toy_lab`` into the temporary course);
it keeps the grading workflow tested even before any real lab exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_KINDS = (
    "reference",
    "blank",
    "pass_cell",
    "deleted",
    "loop",
    "exit",
    "os_exit",
    "import_error",
    "hidden",
    "allclose",
    "gradcheck",
    "import_reference",
)


@dataclass(frozen=True)
class LabCase:
    lab: str
    timeout: int
    blank_cell: str
    delete_cell: str
    loop_function: str
    loop_cells: tuple[str, ...]
    hidden_bug: tuple[str, str]
    hidden_cells: tuple[str, ...]
    allclose_bug: tuple[str, str] | None = None
    allclose_cells: tuple[str, ...] = ()
    gradcheck_bug: tuple[str, str] | None = None
    gradcheck_cells: tuple[str, ...] = ()
    gradcheck_module: str = "micrograd_plus.gradcheck"
    gradcheck_names: tuple[str, ...] = ("check_gradient",)
    gradcheck_cell: str | None = None
    reference_module: str | None = None
    blank_score: float = 0
    full_run_cells: tuple[str, ...] = ()
    kinds: tuple[str, ...] = field(default=ALL_KINDS)
    alternatives: tuple[str, ...] = ()

    def runs(self) -> tuple[str, ...]:
        skip = {
            "allclose": self.allclose_bug is None,
            "gradcheck": self.gradcheck_bug is None,
            "import_reference": self.reference_module is None,
        }
        return tuple(k for k in self.kinds if not skip.get(k)) + tuple(f"alt_{a}" for a in self.alternatives)


CASES: list[LabCase] = [
    LabCase(
        lab="00_toy",
        timeout=5,
        blank_cell="test_square",
        delete_cell="test_mean",
        loop_function="cube",
        loop_cells=("test_cube", "test_cube_gradient"),
        hidden_bug=("return x * x", "return x * abs(x)"),
        hidden_cells=("test_square",),
        allclose_bug=("return sum(xs) / len(xs)", "return sum(xs)"),
        allclose_cells=("test_mean",),
        gradcheck_bug=("return x ** 3", "return x ** 3 + x"),
        gradcheck_cells=("test_cube", "test_cube_gradient"),
        gradcheck_module="toycheck",
    ),
    LabCase(
        # No test of 01 uses numpy.allclose (plain floats): no allclose kind. The ungraded demo cell that
        # checks every op also calls exp, so os._exit there would end the notebook early: no os_exit kind.
        # The timeout must cover the training cell (~60 s on 2 busy cores: the closures make Python's cycle
        # collector work hard; a micrograd-style submission is slower still) and an infinite loop in exp
        # would cost it twice (that demo cell and test_exp_log): no loop kind (exit covers those cells).
        # The graded op cells check with course_check_op (a locked cell) and record their results: the gradcheck
        # attack replaces it (and numpy.allclose) right after its definition (the demo cell after it fails first).
        lab="01_value",
        timeout=180,
        blank_cell="test_add_sub",
        delete_cell="test_pow",
        loop_function="exp",
        loop_cells=("test_exp_log",),
        # a division gradient off by 1e-9: inside the visible checks' tolerance, not the hidden exact values
        hidden_bug=(
            "other.grad += -out.data / other.data * out.grad",
            "other.grad += -out.data / other.data * out.grad * (1 + 1e-9)",
        ),
        hidden_cells=("test_mul_div", "test_neg_reflected"),  # 1 / a is a division too
        gradcheck_bug=("self.grad += e * out.grad\n", "self.grad += 2 * e * out.grad\n"),
        gradcheck_cells=("test_exp_log",),
        gradcheck_module="micrograd_plus.value",
        gradcheck_names=("course_check_op",),
        gradcheck_cell="def course_check_op(",
        kinds=("reference", "blank", "pass_cell", "deleted", "exit", "import_error", "hidden", "gradcheck"),
        alternatives=("closures", "stored"),  # micrograd-style closures; stored local derivatives
    ),
    LabCase(
        # The op checks use the course's own checker (course_check_gradient, a locked cell), not the learner's
        # check_gradient, and record each op's results: the gradcheck attack replaces that checker (and
        # numpy.allclose) at the end of the last solution cell; the records still lose it the cell.
        lab="02_tensor",
        timeout=30,
        blank_cell="test_matmul",
        delete_cell="test_unary",
        loop_function="rel_error",
        loop_cells=("test_gradcheck",),
        hidden_bug=("np.maximum(1e-8, np.abs(x) + np.abs(y))", "np.maximum(1e-12, np.abs(x) + np.abs(y))"),
        hidden_cells=("test_gradcheck",),
        allclose_bug=("return x + y\n", "return x + y + 1e-3\n"),  # Add's forward: its gradient stays right
        # (test_backward_engine records the value of its chain of additions)
        allclose_cells=("test_backward_engine", "test_elementwise", "test_broadcast_ops", "test_all_ops"),
        gradcheck_bug=("out[ctx.index] = grad\n", "out[ctx.index] = 2 * grad\n"),  # basic indexing's backward
        gradcheck_cells=("test_shape_ops", "test_all_ops"),
        gradcheck_names=("course_check_gradient",),
        alternatives=("closures",),  # the documents' _backward closures on arrays, no Function/ctx
        # no loop kind (a 30 s cell timeout; exit and os_exit cover rel_error's cell): keeps the entry's cost
        kinds=tuple(k for k in ALL_KINDS if k != "loop"),
    ),
    LabCase(
        lab="03_layers",
        timeout=15,
        blank_cell="test_module",
        delete_cell="test_layernorm",
        loop_function="softmax",
        loop_cells=("test_activations",),
        hidden_bug=("return Sequential(*layers[index])", "return layers[index]"),
        hidden_cells=("test_sequential",),
        allclose_bug=("return _as_tensor(x).relu()", "return _as_tensor(x).relu() * 2"),
        allclose_cells=("test_activations",),
        # no gradcheck kind: every gradient a graded cell checks with check_gradient is also recorded (and
        # test_sequential builds its own layers), so replacing check_gradient wins nothing; 00, 02, 04 keep it
        reference_module="micrograd_plus.layers",
    ),
    LabCase(
        lab="04_losses",
        timeout=15,
        blank_cell="test_mse",
        delete_cell="test_hinge",
        loop_function="multi_margin_loss",
        loop_cells=("test_hinge",),
        hidden_bug=(
            "losses = -(target * log_probs).sum(axis=1)",
            "losses = -(target * log_probs).sum(axis=1) * target.max(axis=1)",
        ),
        hidden_cells=("test_ce_values", "test_ce_grad"),
        allclose_bug=("np.log1p(np.exp(-np.abs(x)))", "np.log1p(np.exp(-np.abs(x))) + 0.01"),
        allclose_cells=("test_bce", "test_modules"),
        gradcheck_bug=("else 2.0 * violation)", "else 3.0 * violation)"),
        gradcheck_cells=("test_hinge",),
        reference_module="micrograd_plus.losses",
    ),
    LabCase(
        lab="05_optimizers",
        timeout=30,
        blank_cell="test_sgd",
        delete_cell="test_steplr",
        loop_function="clip_grad_norm_",
        loop_cells=("test_clip_grad_norm",),
        hidden_bug=('buf += (1.0 - float(group["dampening"])) * grad', "buf += grad"),
        hidden_cells=("test_sgd",),
        allclose_bug=("data *= 1.0 - lr * weight_decay  # AdamW", "data *= 1.0 - weight_decay  # AdamW"),
        allclose_cells=("test_adamw",),
        reference_module="micrograd_plus.optimizers",
        kinds=("reference", "blank", "pass_cell", "deleted", "loop", "hidden", "allclose", "import_reference"),
    ),
    LabCase(
        # Trains the MNIST MLP (two epochs) in every submission that gets that far: few kinds.
        # Every learner function also runs in ungraded demo cells, so no loop/exit kinds.
        lab="06_mnist",
        timeout=300,
        blank_cell="test_dataloader",
        delete_cell="test_evaluate",
        loop_function="evaluate",
        loop_cells=("test_evaluate",),
        hidden_bug=("total_loss += loss.item() * n", "total_loss += loss.item() * 16"),  # unweighted mean
        hidden_cells=("test_train_epoch",),
        kinds=("reference", "blank", "pass_cell", "deleted", "hidden"),
    ),
    LabCase(
        # Runs the CPU benchmark and a full MNIST epoch in ungraded cells of every full submission:
        # few kinds. benchmark and time_epoch also run in those cells, so no loop/exit kinds.
        lab="07_benchmark",
        timeout=120,
        blank_cell="test_time_epoch",
        delete_cell="test_benchmark",
        loop_function="benchmark",
        loop_cells=("test_benchmark",),
        hidden_bug=("statistics.median(times)", "statistics.mean(times)"),
        hidden_cells=("test_benchmark",),
        kinds=("reference", "blank", "pass_cell", "deleted", "hidden"),
    ),
    LabCase(
        # Trains the MNIST MLP (twice five epochs) in every full submission: few kinds. Its derivation
        # cells are graded by hand, so the reference scores the autograded points only. The wrong
        # derivative: ReLU'(0) = 1, which random inputs never see; the hidden test compares with PyTorch at 0.
        lab="08_backprop",
        timeout=120,
        blank_cell="test_linear",
        delete_cell="test_losses",
        loop_function="numerical_gradient",
        loop_cells=("test_numerical_gradient",),
        hidden_bug=("self.mask = x > 0", "self.mask = x >= 0"),
        hidden_cells=("test_activations",),
        kinds=("reference", "blank", "hidden"),
    ),
    LabCase(
        # Trains small MNIST nets for ~30 s in every submission that gets that far: few kinds. Its six written
        # answers are graded by hand (0 at autograde). The hidden bug draws kaiming_uniform_ from a normal of
        # the right variance: the visible variance check passes, the hidden bound check does not.
        lab="09_dynamics",
        timeout=120,
        blank_cell="test_xavier",
        delete_cell="test_orthogonal",
        loop_function="orthogonal_",
        loop_cells=("test_orthogonal",),
        hidden_bug=(
            "bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)\n"
            "    return uniform_(tensor, -bound, bound, generator)",
            "bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)\n"
            "    return normal_(tensor, 0.0, bound / math.sqrt(3.0), generator)",
        ),
        hidden_cells=("test_kaiming",),
        kinds=("reference", "blank", "hidden"),
    ),
    LabCase(
        # Trains the narrow ResNet on 512 CIFAR-10 images (an ungraded run; the trainer tests use a tiny network) in
        # every full submission: few kinds.
        # The visible optimizer check uses no dampening; the hidden one does.
        lab="11_resnet",
        timeout=120,
        blank_cell="test_torch_optimizers",
        delete_cell="test_resume",
        loop_function="random_crop_flip",
        loop_cells=("test_augment",),
        hidden_bug=('.add_(grad, alpha=1.0 - group["dampening"])', ".add_(grad)"),
        hidden_cells=("test_torch_optimizers",),
        kinds=("reference", "blank", "deleted", "hidden"),
    ),
    LabCase(
        # Each full submission trains the short run (one epoch on 2 000 images, its weights to cnn_weights.npz)
        # and predicts the 10 000 test images twice: few kinds. No full run's weights: the accuracy cell scores 0
        # (full_run_cells). The hidden bug: BatchNorm2d's backward without affine parameters forgets 1/sigma;
        # the visible checks all use gamma.
        lab="10_conv",
        timeout=120,
        blank_cell="test_im2col",
        delete_cell="test_avgpool",
        loop_function="random_crop_flip",
        loop_cells=("test_augment",),
        hidden_bug=(
            "scale = inv_std if weight is None else inv_std * weight",
            "scale = np.ones_like(inv_std) if weight is None else inv_std * weight",
        ),
        hidden_cells=("test_batchnorm2d",),
        kinds=("reference", "blank", "hidden"),
        full_run_cells=("test_cifar_accuracy",),
    ),
]


# ---------------------------------------------------------------- the suite's own lab
# How a graded cell gets the recording API (grader/checks.py): a no-op outside grading.
RECORD_IMPORT = """try:
    from grader.checks import record
except ImportError:
    def record(*args, **kwargs):
        pass"""

TOY_HELPER = '''\
"""A stand-in for a course test helper (like micrograd_plus.gradcheck)."""


def check_gradient(f, x, expected, eps=1e-6):
    numerical = (f(x + eps) - f(x - eps)) / (2 * eps)
    return abs(numerical - expected) < 1e-4
'''


def toy_lab():
    """The notebook of ``00_toy`` (8 points) and its helper file, as nbformat objects."""
    import nbformat.v4 as v4

    def code(source, grade_id=None, points=None, solution=False):
        cell = v4.new_code_cell(source)
        if grade_id:
            cell.metadata["nbgrader"] = {
                "grade": points is not None,
                "solution": solution,
                "locked": not solution,
                "grade_id": grade_id,
                "schema_version": 3,
                "task": False,
                **({"points": points} if points else {}),
            }
            cell.id = grade_id
        return cell

    def solution(name, body):
        return code(
            f"def {name}:\n    ### BEGIN SOLUTION\n    {body}\n    ### END SOLUTION", name.split("(")[0], solution=True
        )

    nb = v4.new_notebook(
        cells=[
            v4.new_markdown_cell("# 00_toy: the grader's test lab (8 points)"),
            code("import numpy as np\nfrom toycheck import check_gradient\n" + RECORD_IMPORT, "imports"),
            solution("square(x)", "return x * x"),
            code(
                'assert square(3) == 9, "square(3) should be 9"\nrecord("square_3", square(3))\n'
                '### BEGIN HIDDEN TESTS\nrecord("square_negative", square(-2.5))\n'
                'assert square(-2) == 4, "square of a negative number"\n### END HIDDEN TESTS',
                "test_square",
                2,
            ),
            solution("cube(x)", "return x ** 3"),
            code('assert cube(2) == 8, f"cube(2) = {cube(2)}, expected 8"\nrecord("cube_2", cube(2))', "test_cube", 1),
            solution("mean(xs)", "return sum(xs) / len(xs)"),
            code(
                'assert np.allclose(mean([1.0, 2.0, 3.0]), 2.0)\nrecord("mean_123", mean([1.0, 2.0, 3.0]))',
                "test_mean",
                2,
            ),
            code(
                "assert check_gradient(cube, 1.5, 3 * 1.5 ** 2)\n"
                'record("cube_slope", (cube(1.5 + 1e-6) - cube(1.5 - 1e-6)) / 2e-6, rtol=1e-5)',
                "test_cube_gradient",
                3,
            ),
        ]
    )
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    return nb, {"toycheck.py": TOY_HELPER}
