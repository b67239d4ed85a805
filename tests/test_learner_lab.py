"""The learner's side of the course: their own copies of the labs (mylabs/) survive every
course command and update, the learner's JupyterLab has no instructor tools, the released
notebooks open clean, and validation reports what a learner can act on."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import mylabs, validation_report
from grader.release import LANGUAGE_INFO, KERNELSPEC, tidy

ROOT = Path(__file__).resolve().parent.parent
LAB = "01_value"
LEARNER = ROOT / "grader" / "jupyter" / "learner"


# ---------------------------------------------------------------- helpers
def make_course(dest: Path, labs=(LAB,)) -> Path:
    """A course directory with the grader, its configuration, and the given labs' solutions."""
    (dest / "grader").mkdir(parents=True)
    for f in (ROOT / "grader").glob("*.py"):
        shutil.copy2(f, dest / "grader" / f.name)
    for name in ("nbgrader_config.py", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)
    for lab in labs:
        shutil.copytree(
            ROOT / "solutions" / lab,
            dest / "solutions" / lab,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
    return dest


def course_env(course: Path) -> dict:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # nbgrader runs alembic
    return dict(os.environ, MICROGRAD_PLUS_COURSE_ROOT=str(course), PYTHONPATH=str(course), PATH=path)


def run(args, cwd, env=None, check=True):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def fill_in(course: Path, lab: str = LAB) -> dict[Path, bytes]:
    """A learner's work: the solution as their copy, an extra notebook, a checkpoint; returns the bytes."""
    assert mylabs.sync(root=course)
    mine = course / "mylabs" / lab
    shutil.copy2(ROOT / "solutions" / lab / f"{lab}.ipynb", mine / f"{lab}.ipynb")
    (mine / "scratch.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()), encoding="utf-8")
    (mine / ".ipynb_checkpoints").mkdir()
    shutil.copy2(mine / f"{lab}.ipynb", mine / ".ipynb_checkpoints" / f"{lab}-checkpoint.ipynb")
    return {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()}


def assert_unchanged(work: dict[Path, bytes]) -> None:
    for path, data in work.items():
        assert path.exists(), f"{path} was deleted"
        assert path.read_bytes() == data, f"{path} was overwritten"


# ---------------------------------------------------------------- the learner's copies
def test_copies_are_created_once_and_never_overwritten(tmp_path):
    release = tmp_path / "labs" / LAB / f"{LAB}.ipynb"
    release.parent.mkdir(parents=True)
    shutil.copy2(ROOT / "labs" / LAB / f"{LAB}.ipynb", release)
    mine = mylabs.learner_notebook(LAB, root=tmp_path)

    assert mylabs.sync(root=tmp_path) == [f"created mylabs/{LAB}/{LAB}.ipynb (your copy of labs/{LAB}/{LAB}.ipynb)"]
    copy = nbformat.read(mine, as_version=4)
    assert [c.source for c in copy.cells] == [c.source for c in nbformat.read(release, as_version=4).cells]
    assert copy.metadata.language_info == mylabs.language_info()
    mine.write_text(mine.read_text().replace("# YOUR CODE HERE", "# my answer"))
    work = mine.read_bytes()
    assert mylabs.sync(root=tmp_path) == [] and mine.read_bytes() == work

    # a new release: offered next to the copy, the copy untouched; twice: a second name
    for n, name in enumerate((f"{LAB}.updated.ipynb", f"{LAB}.updated-2.ipynb")):
        nb = nbformat.read(release, as_version=4)
        nb.cells.append(nbformat.v4.new_markdown_cell(f"an erratum {n}"))
        nbformat.write(nb, release)
        done = mylabs.sync(root=tmp_path)
        assert len(done) == 1 and f"mylabs/{LAB}/{name}" in done[0] and "unchanged" in done[0], done
        assert mine.read_bytes() == work
        assert nbformat.read(mine.parent / name, as_version=4).cells[-1].source == f"an erratum {n}"
        assert mylabs.sync(root=tmp_path) == []
    assert mylabs.sync(LAB, root=tmp_path) == []
    with pytest.raises(SystemExit, match="no lab 99_nothing"):
        mylabs.sync("99_nothing", root=tmp_path)


@pytest.mark.slow
def test_learner_work_survives_make_release_and_the_formgraders_generate(tmp_path):
    course = make_course(tmp_path / "course")
    env = course_env(course)
    run([sys.executable, "-m", "grader.release", "--lab", LAB], cwd=course, env=env)
    work = fill_in(course)
    # `make release` (nbgrader generate_assignment --force: deletes and rebuilds labs/01_value)
    run([sys.executable, "-m", "grader.release", "--lab", LAB], cwd=course, env=env)
    assert_unchanged(work)
    # the formgrader's Generate button (nbgrader's API call behind it)
    script = (
        "from traitlets.config.loader import PyFileConfigLoader\n"
        "from nbgrader.apps import NbGraderAPI\n"
        "from nbgrader.coursedir import CourseDirectory\n"
        "cfg = PyFileConfigLoader('nbgrader_config.py', path='.').load_config()\n"
        f"result = NbGraderAPI(CourseDirectory(config=cfg), config=cfg).generate_assignment({LAB!r})\n"
        "assert result['success'], result\n"
        "print(result.get('log', ''))\n"
    )
    proc = run([sys.executable, "-c", script], cwd=course, env=env)
    assert "Removing existing assignment" in proc.stdout + proc.stderr  # it did rebuild the release folder
    assert_unchanged(work)
    assert mylabs.sync(root=course) == []  # the same release: nothing offered


@pytest.mark.slow
def test_learner_work_survives_a_git_pull_that_updates_the_lab(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "init.defaultBranch=main"]
    upstream = make_course(tmp_path / "upstream")
    shutil.copy2(ROOT / ".gitignore", upstream / ".gitignore")
    run([sys.executable, "-m", "grader.release", "--lab", LAB], cwd=upstream, env=course_env(upstream))
    run([*git, "init", "-q"], cwd=upstream)
    run([*git, "add", "."], cwd=upstream)
    run([*git, "commit", "-qm", "release"], cwd=upstream)
    clone = tmp_path / "learner"
    run([*git, "clone", "-q", str(upstream), str(clone)], cwd=tmp_path)
    work = fill_in(clone)
    assert not run(["git", "status", "--porcelain"], cwd=clone).stdout.strip(), "mylabs/ must be git-ignored"

    # the instructor publishes an updated lab
    release = upstream / "labs" / LAB / f"{LAB}.ipynb"
    nb = nbformat.read(release, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("Erratum: the second exercise now asks for more."))
    nbformat.write(nb, release)
    run([*git, "commit", "-qam", "lab 01: erratum"], cwd=upstream)

    run([*git, "pull", "-q", "--ff-only"], cwd=clone)
    assert "Erratum" in (clone / "labs" / LAB / f"{LAB}.ipynb").read_text()
    assert_unchanged(work)
    proc = run([sys.executable, "-m", "grader.mylabs"], cwd=clone, env=course_env(clone))
    assert f"mylabs/{LAB}/{LAB}.updated.ipynb" in proc.stdout
    assert_unchanged(work)
    assert "Erratum" in (clone / "mylabs" / LAB / f"{LAB}.updated.ipynb").read_text()


def test_make_targets_use_the_learners_copy():
    for target, expected in (
        ("validate", "python -m grader.validate --lab 01_value"),
        ("export-mine", "python -m grader.export --from mylabs --lab 01_value"),
    ):
        proc = run(["make", "-n", target, "LAB=01_value"], cwd=ROOT)
        assert expected in proc.stdout, proc.stdout
    lab = run(["make", "-n", "lab"], cwd=ROOT).stdout
    assert "python -m grader.mylabs" in lab and "/lab/tree/mylabs" in lab and "grader/jupyter/learner" in lab
    instructor = run(["make", "-n", "lab-instructor"], cwd=ROOT).stdout
    assert "grader/jupyter/learner" not in instructor
    assert "mylabs/" in (ROOT / ".gitignore").read_text().split()


def test_validate_checks_the_learners_copy_by_default(tmp_path):
    course = make_course(tmp_path / "course", labs=())
    (course / "labs" / LAB).mkdir(parents=True)
    shutil.copy2(ROOT / "labs" / LAB / f"{LAB}.ipynb", course / "labs" / LAB)
    proc = run(
        [
            sys.executable,
            "-c",
            "import sys, grader.validate as v; v.validate = print; v.main(sys.argv[1:])",
            "--lab",
            LAB,
        ],
        cwd=course,
        env=course_env(course),
    )
    assert str(course / "mylabs" / LAB / f"{LAB}.ipynb") in proc.stdout, proc.stdout
    assert (course / "mylabs" / LAB / f"{LAB}.ipynb").exists()


# ---------------------------------------------------------------- the learner's JupyterLab
def _plugin_ids() -> set[str]:
    """The plugin ids of nbgrader's installed JupyterLab extension (read from its bundle)."""
    from jupyter_core.paths import jupyter_path

    static = next(
        p for p in (Path(d) / "@jupyter" / "nbgrader" / "static" for d in jupyter_path("labextensions")) if p.is_dir()
    )
    code = "".join(f.read_text() for f in static.glob("*.js"))
    return set(
        re.findall(r'id:"(@jupyter/nbgrader:[^"]+)"', code) + re.findall(r'="(@jupyter/nbgrader:formgrader)"', code)
    )


def test_learner_configuration_switches_off_the_instructor_tools():
    server = json.loads((LEARNER / "jupyter_server_config.json").read_text())["ServerApp"]["jpserver_extensions"]
    assert server == {
        "nbgrader.server_extensions.formgrader": False,
        "nbgrader.server_extensions.assignment_list": False,
        "nbgrader.server_extensions.course_list": False,
        "nbgrader.server_extensions.validate_assignment": False,  # served by grader.learner_lab
        "grader.learner_lab": True,
    }
    disabled = json.loads((LEARNER / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    plugins = _plugin_ids()
    assert set(disabled) <= plugins, f"unknown plugin ids {set(disabled) - plugins} (nbgrader's are {plugins})"
    assert plugins - set(disabled) == {"@jupyter/nbgrader:validate-assignment"}


def test_the_dialog_stylesheet_says_hidden_tests_run_at_grading():
    css = (LEARNER / "custom" / "custom.css").read_text()
    assert f'content: "{validation_report.PASS_TEXT}"' in css


# ---------------------------------------------------------------- the report of a validation
def _toy_results(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "assert f(2) == 4, f'f(2): expected 4, got {f(2)}'",
                metadata={"nbgrader": {"grade": True, "grade_id": "test_f", "points": 2}},
            ),
            nbformat.v4.new_code_cell(
                "assert g(1) == 1", metadata={"nbgrader": {"grade": True, "grade_id": "test_g", "points": 1}}
            ),
            nbformat.v4.new_code_cell(
                "assert h() is None", metadata={"nbgrader": {"grade": True, "grade_id": "test_h", "points": 1}}
            ),
        ]
    )
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, path)
    trace = "\x1b[0;31m---------\x1b[0m\n\x1b[0;31mAssertionError\x1b[0m: f(2): expected 4, got 5"
    stub = "Cell In[3], line 5\n----> 5 raise NotImplementedError()\n\x1b[0;31mNotImplementedError\x1b[0m: "
    results = {
        "failed": [
            {"source": nb.cells[0].source, "raw_error": trace, "error": "<span>html</span>"},
            {"source": nb.cells[1].source, "raw_error": stub, "error": "<span>stub</span>"},
        ]
    }
    return path, results


def test_failure_report_gives_the_count_then_messages_then_tracebacks(tmp_path):
    path, results = _toy_results(tmp_path)
    report = validation_report.text(results, path)
    assert report.splitlines()[0] == "VALIDATION FAILED for toy.ipynb: 2 of 3 test cells fail."
    first, stub, hidden = (
        report.index(s) for s in ("f(2): expected 4, got 5", "a `# YOUR CODE HERE` stub", validation_report.HIDDEN_NOTE)
    )
    tracebacks = report.index("FAILED TEST 1. test_f (2 points)")
    assert first < stub < hidden < tracebacks < report.index("FAILED TEST 2. test_g (1 point)")
    assert "\x1b" not in report

    dialog = validation_report.dialog_value(results, path)["failed"]
    assert len(dialog) == 3
    assert dialog[0]["source"].startswith("2 of 3 test cells fail.\n  1. test_f (2 points)\n     AssertionError: f(2)")
    assert validation_report.HIDDEN_NOTE in dialog[0]["source"]
    assert dialog[1]["source"].startswith("1. test_f (2 points)") and dialog[1]["error"] == "<span>html</span>"
    assert dialog[2]["source"].startswith("2. test_g (1 point)")


def test_pass_and_changed_cells_keep_nbgraders_shape(tmp_path):
    path, _ = _toy_results(tmp_path)
    assert validation_report.dialog_value({}, path) == {}
    assert validation_report.text({}, path) == f"PASSED for toy.ipynb: {validation_report.PASS_TEXT}"
    changed = {"changed": [{"source": "assert True"}]}
    assert validation_report.dialog_value(changed, path) == changed
    assert "LOCKED CELL CHANGED" in validation_report.text(changed, path)


# ---------------------------------------------------------------- released notebooks
@pytest.mark.parametrize("lab", sorted(p.name for p in (ROOT / "labs").glob("[0-9][0-9]_*")))
def test_released_labs_carry_the_metadata_jupyterlab_writes(lab):
    nb = nbformat.read(ROOT / "labs" / lab / f"{lab}.ipynb", as_version=4)
    assert nb.metadata.kernelspec == KERNELSPEC and nb.metadata.language_info == LANGUAGE_INFO
    for cell in nb.cells:
        assert "execution" not in cell.metadata, "the instructor's run timings are not the learner's"
        assert not [t for t in cell.metadata.get("tags", []) if t.startswith("nbval-")]


def test_tidy_keeps_other_tags_and_is_idempotent(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "1",
                metadata={"tags": ["nbval-ignore-output", "hide-input"], "execution": {"iopub.status.idle": "2026"}},
            ),
            nbformat.v4.new_code_cell("2", metadata={"tags": ["nbval-skip"]}),
        ]
    )
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    tidy(path)
    first = path.read_bytes()
    tidy(path)
    assert path.read_bytes() == first
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].metadata == {"tags": ["hide-input"]} and cells[1].metadata == {}


# ---------------------------------------------------------------- nbval's cell tags
def test_from_py_round_trip_keeps_cell_tags(tmp_path):
    from tools import nb as nbtool

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nimport time\nprint(time.time())"),
            nbformat.v4.new_code_cell(
                "print(1)",
                metadata={
                    "nbgrader": {
                        "grade": True,
                        "grade_id": "test_one",
                        "locked": True,
                        "points": 1,
                        "schema_version": 3,
                        "solution": False,
                        "task": False,
                    }
                },
            ),
        ]
    )
    src = tmp_path / "src.ipynb"
    nbformat.write(nbtool.clean(nb), src)
    run([sys.executable, "-m", "tools.nb", "tag-nbval", str(src)], cwd=ROOT)
    tagged = nbformat.read(src, as_version=4)
    assert tagged.cells[0].source == "import time\nprint(time.time())"
    assert tagged.cells[0].metadata.tags == ["nbval-ignore-output"]
    run([sys.executable, "-m", "tools.nb", "to-py", str(src), str(tmp_path / "nb.py")], cwd=ROOT)
    run([sys.executable, "-m", "tools.nb", "from-py", str(tmp_path / "nb.py"), str(tmp_path / "back.ipynb")], cwd=ROOT)
    assert (tmp_path / "back.ipynb").read_bytes() == src.read_bytes()


@pytest.mark.slow
def test_nbval_honours_the_tag(tmp_path):
    cells = [
        nbformat.v4.new_code_cell(
            "import time\nprint(time.time())",
            execution_count=1,
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="0.0\n")],
        )
    ]
    for tags, expected in (([], 1), (["nbval-ignore-output"], 0)):
        cells[0].metadata = {"tags": tags} if tags else {}
        path = tmp_path / f"tags{len(tags)}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC}), path)
        proc = run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "--nbval", str(path)],
            cwd=tmp_path,
            check=False,
        )
        assert proc.returncode == expected, proc.stdout[-2000:]


def test_export_mine_exports_the_learners_copy(tmp_path):
    course = make_course(tmp_path / "course", labs=())
    shutil.copytree(ROOT / "labs" / LAB, course / "labs" / LAB)
    fill_in(course)  # the learner's copy is the completed lab
    dest = tmp_path / "package"
    run(
        [sys.executable, "-m", "grader.export", "--from", "mylabs", "--lab", LAB, "--dest", str(dest)],
        cwd=course,
        env=course_env(course),
    )
    value = (dest / "value.py").read_text()
    assert "File to edit: ../mylabs/01_value/01_value.ipynb" in value.splitlines()[0]
    assert "NotImplementedError()" not in value  # the learner's code, not the release's stubs


@pytest.mark.slow
def test_tag_nbval_converts_the_solutions_and_the_release_drops_the_tags(tmp_path):
    """On a copy: every first-line NBVAL comment becomes a tag; nbgrader releases the result cleanly."""
    labs = [p.parent.name for p in sorted((ROOT / "solutions").glob("*/*.ipynb")) if p.parent.name == p.stem]
    course = make_course(tmp_path / "course", labs=labs)
    notebooks = sorted((course / "solutions").glob("*/*.ipynb"))
    marked = sum(
        1
        for nb in notebooks
        for c in nbformat.read(nb, as_version=4).cells
        if c.cell_type == "code" and c.source.lstrip().startswith("# NBVAL_")
    )
    run([sys.executable, "-m", "tools.nb", "tag-nbval", *map(str, notebooks)], cwd=ROOT)
    cells = [c for nb in notebooks for c in nbformat.read(nb, as_version=4).cells]
    assert not [c for c in cells if "NBVAL_" in c.source.split("\n")[0]]
    assert sum(1 for c in cells if "nbval-ignore-output" in c.metadata.get("tags", [])) >= marked
    tagged = [nb.parent.name for nb in notebooks if "nbval-" in nb.read_text()]
    for lab in tagged[:1]:  # nbgrader keeps the tag; the release drops it
        run([sys.executable, "-m", "grader.release", "--lab", lab], cwd=course, env=course_env(course))
        released = (course / "labs" / lab / f"{lab}.ipynb").read_text()
        assert "nbval-" not in released and "NBVAL_" not in released


def test_the_learners_server_refuses_to_save_over_the_release(tmp_path):
    import asyncio

    from jupyter_server.services.contents.filemanager import AsyncFileContentsManager, FileContentsManager
    from tornado.web import HTTPError

    from grader.learner_lab import _guard_the_release

    (tmp_path / "labs" / LAB).mkdir(parents=True)
    (tmp_path / "mylabs" / LAB).mkdir(parents=True)
    model = {"type": "file", "format": "text", "content": "my answer"}
    for manager, call in ((FileContentsManager, lambda r: r), (AsyncFileContentsManager, asyncio.run)):
        cm = manager(root_dir=str(tmp_path))
        _guard_the_release(cm)
        with pytest.raises(HTTPError, match=f"Your copy is mylabs/{LAB}/notes.txt") as refused:
            call(cm.save(model, f"labs/{LAB}/notes.txt"))
        assert refused.value.status_code == 403 and not (tmp_path / "labs" / LAB / "notes.txt").exists()
        assert call(cm.save(model, f"mylabs/{LAB}/notes.txt"))["name"] == "notes.txt"
        assert call(cm.save(model, "labs.txt"))["name"] == "labs.txt"  # only the folder labs/ is the release
