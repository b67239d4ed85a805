# ---------------------------------------------------------------- datasets (tests/test_data.py, tests/test_training.py)
# The real MNIST and CIFAR-10 files come from the offline copies next to the repository
# (../shared/datasets, or the first folder of $MICROGRAD_PLUS_DATA_FROM). In CI they must be
# there: a missing copy fails the tests instead of silently skipping them.
import os as _os
from pathlib import Path as _Path

import pytest as _pytest

_SHARED_DATASETS = _Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
# Subprocesses (nbgrader autograding a lab in a temporary course, notebooks) find the files there too.
if not _os.environ.get("MICROGRAD_PLUS_DATA_FROM") and (_SHARED_DATASETS / "mnist").is_dir():
    _os.environ["MICROGRAD_PLUS_DATA_FROM"] = str(_SHARED_DATASETS)


@_pytest.fixture(scope="session")
def shared_datasets():
    """The folder holding mnist/ (and cifar10/) as downloaded; skip locally, FAIL in CI when missing."""
    candidates = [_Path(p) for p in _os.environ.get("MICROGRAD_PLUS_DATA_FROM", "").split(_os.pathsep) if p]
    for folder in [*candidates, _SHARED_DATASETS]:
        if (folder / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return folder
    message = (
        f"the offline dataset copies are missing: expected {_SHARED_DATASETS}/mnist (or set MICROGRAD_PLUS_DATA_FROM)"
    )
    if _os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        _pytest.fail(message)
    _pytest.skip(message)


@_pytest.fixture(scope="session")
def mnist_dir(shared_datasets):
    """The folder with the four original MNIST .gz files (read-only)."""
    return shared_datasets / "mnist"


@_pytest.fixture(scope="session")
def mnist_root(shared_datasets, tmp_path_factory):
    """A data root with MNIST imported (verified) through fetch(from_dir=...), as `make data FROM=` does."""
    from micrograd_plus.data import fetch

    root = tmp_path_factory.mktemp("data")
    fetch("mnist", root, from_dir=shared_datasets / "mnist")
    return root
