"""The instructor's term: LMS downloads, parallel and sharded grading, resubmissions,
feedback under hidden tests, LMS grade files. Real nbgrader runs on the suite's cheap
``00_toy`` lab (tests/grading_cases.py) with tiny submissions; the shard test starts its
own PostgreSQL server (Debian's ``postgresql`` package) and stops it.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

from grader.collect import learner_id, parse, strip_suffixes
from grader.hardening import HIDDEN_NOTE, learner_traceback
from grader.logfilter import LogFilter
from grader.parallel import shard
from tests.grading_cases import CASES
from tests.test_grading import cell, course_env, make_course, submission

TOY = next(c for c in CASES if c.lab == "00_toy")
T1, T2, T3 = (2026, 3, 1, 10, 0, 0), (2026, 3, 2, 9, 30, 0), (2026, 3, 3, 8, 0, 0)
CLOSING = re.compile(r"graded (\d+) submissions in [\d.]+ s \([\d.]+ per minute\)")


# ---------------------------------------------------------------- fast: names, shards, log, traceback
@pytest.mark.parametrize(
    "path, student, lms, lms_id",
    [
        ("Zoë O'Brien_104233_assignsubmission_file_/00_toy.ipynb", "zoe-obrien", "moodle", "104233"),
        (
            "José María de la Cruz_104240_assignsubmission_file_00_toy (1).ipynb",
            "jose-maria-de-la-cruz",
            "moodle",
            "104240",
        ),
        ("smithjohn_1001_5002_00_toy-1.ipynb", "smithjohn", "canvas", "1001"),
        ("doejane_LATE_1002_5003_00_toy-Copy1.ipynb", "doejane", "canvas", "1002"),
        ("alice_00_toy.ipynb", "alice", "plain", ""),
        ("bob_late_00_toy.ipynb", "bob", "plain", ""),
        ("sub/bob_2026_00_toy.ipynb", "bob", "plain", ""),
    ],
)
def test_lms_file_names_map_to_stable_learner_ids(path, student, lms, lms_id):
    from datetime import datetime, timezone

    entry = parse(path, "00_toy", datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert not isinstance(entry, str), entry
    assert (entry.student, entry.lms, entry.lms_id) == (student, lms, lms_id)


@pytest.mark.parametrize(
    "path, reason",
    [
        ("bob_01_value.ipynb", "a notebook of 01_value, not of 00_toy"),
        ("notes.pdf", "not a notebook"),
        ("00_toy.ipynb", "the learner cannot be told from the name"),
    ],
)
def test_files_that_are_not_collected_say_why(path, reason):
    from datetime import datetime, timezone

    assert parse(path, "00_toy", datetime(2026, 1, 1, tzinfo=timezone.utc)).startswith(reason)


def test_name_timestamp_wins_over_the_archive_time():
    from datetime import datetime, timezone

    entry = parse("alice_attempt_2026-03-01-17-05-59_00_toy.ipynb", "00_toy", datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert entry.time == datetime(2026, 3, 1, 17, 5, 59, tzinfo=timezone.utc)


def test_collect_puts_handed_in_weights_next_to_the_notebook(tmp_path):
    """Lab 10's cnn_weights.npz, named as the LMS names the notebook, lands next to its learner's notebook."""
    course = make_course(tmp_path / "course", [])
    nb = nbformat.writes(nbformat.v4.new_notebook())
    with zipfile.ZipFile(tmp_path / "downloads.zip", "w") as z:
        z.writestr("Zoë O'Brien_104233_assignsubmission_file_/10_conv.ipynb", nb)
        z.writestr("Zoë O'Brien_104233_assignsubmission_file_/cnn_weights.npz", b"zoe's weights")
        z.writestr("smithjohn_1001_5002_10_conv.ipynb", nb)
        z.writestr("smithjohn_1001_5002_cnn_weights.npz", b"first")
        z.writestr("smithjohn_1001_5003_cnn_weights-1.npz", b"second")
        z.writestr("alice_10_conv.ipynb", nb)
        z.writestr("bob_cnn_weights.npz", b"no notebook")
    proc = subprocess.run(
        [sys.executable, "-m", "grader.collect", "--zip", str(tmp_path / "downloads.zip"), "--lab", "10_conv"],
        cwd=course,
        env=course_env(course),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, "bob's weights without a notebook are skipped: " + proc.stdout + proc.stderr
    assert "SKIPPED bob_cnn_weights.npz: a cnn_weights.npz without a newer notebook of 10_conv" in proc.stdout
    submitted = course / "grader" / "submitted"
    assert (submitted / "zoe-obrien" / "10_conv" / "cnn_weights.npz").read_bytes() == b"zoe's weights"
    assert (submitted / "smithjohn" / "10_conv" / "cnn_weights.npz").read_bytes() == b"second"  # the latest copy
    assert (submitted / "alice" / "10_conv" / "10_conv.ipynb").is_file()
    assert not (submitted / "alice" / "10_conv" / "cnn_weights.npz").exists() and not (submitted / "bob").exists()


def test_ids_and_suffixes():
    assert learner_id("Ana-Lucía  D'Souza") == "ana-lucia-dsouza"
    assert strip_suffixes("00_toy-Copy2 (3)") == ("00_toy", 3)


def test_shards_partition_the_class():
    learners = [f"learner{i:03d}" for i in range(203)]
    parts = [shard(learners, (i, 4)) for i in range(1, 5)]
    assert sorted(sum(parts, [])) == learners
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_log_filter_drops_known_false_warnings_and_keeps_tampering():
    log = LogFilter(
        released={"test_a": "assert f(1) == 2", "test_b": "assert g()"},
        submitted={"test_a": "assert f(1) == 2", "test_b": "pass"},
    )
    text = "\n".join(
        [
            "/x/nbgrader/api.py:2229: SAWarning: Object of type <SubmittedAssignment> not in session",
            "  for notebook in submission.assignment.notebooks:",
            "[AutogradeApp | WARNING] Attribute 'checksum' for cell test_a has changed! (should be: 1, got: 2)",
            "[AutogradeApp | WARNING] Attribute 'checksum' for cell test_b has changed! (should be: 1, got: 2)",
            "Kernel is running over TCP without encryption.",
            "[AutogradeApp | WARNING] alice is 3600 seconds late",
        ]
    )
    kept = log.filter(text)
    assert [log.explain(k) for k in kept][0].startswith("WARNING: the submission changed graded/locked cell test_b")
    assert kept[1].endswith("alice is 3600 seconds late") and len(kept) == 2


def test_feedback_traceback_keeps_the_learners_frames_only():
    tb = [
        "\x1b[31m----\x1b[39m",
        "ValueError   Traceback (most recent call last)",
        "\x1b[36mCell\x1b[39m \x1b[32mIn[9]\x1b[39m, line 4\n----> 4 assert square(-2) == 4",
        "\x1b[36mCell\x1b[39m \x1b[32mIn[9]\x1b[39m, line 2, in _hidden\n----> 2 secret()",
        "\x1b[36mCell\x1b[39m \x1b[32mIn[3]\x1b[39m, line 2, in square\n----> 2 raise ValueError('negative')",
        "ValueError: negative",
    ]
    out = learner_traceback(tb, "ValueError", "negative")
    assert HIDDEN_NOTE in out and out[-1] == "ValueError: negative"
    assert not any("square(-2)" in line or "secret()" in line for line in out)
    assert any("in square" in line for line in out)


# ---------------------------------------------------------------- real grading runs
def toy_course(dest: Path, db_url: str | None = None) -> Path:
    course = make_course(dest, ["00_toy"])
    proc = subprocess.run(
        [sys.executable, "-m", "grader.release", "--lab", "00_toy"],
        cwd=course,
        env=env_for(course, db_url),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return course


def env_for(course: Path, db_url: str | None = None) -> dict[str, str]:
    env = course_env(course, TOY.timeout)
    env.pop("MICROGRAD_PLUS_DB_URL", None)
    if db_url:
        env["MICROGRAD_PLUS_DB_URL"] = db_url
    return env


def run(course: Path, module: str, *args: str, db_url: str | None = None, **popen) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", f"grader.{module}", *args],
        cwd=course,
        env=env_for(course, db_url),
        capture_output=True,
        text=True,
    )
    print(f"$ {module} {' '.join(args)}\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return proc


def notebook(course: Path, kind: str, edit=None) -> str:
    nb = submission(TOY, kind, course)
    if edit:
        edit(nb)
    return nbformat.writes(nb)


def archive(path: Path, entries) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text, when in entries:
            zf.writestr(zipfile.ZipInfo(name, date_time=when), text)
    return path


def learner_scores(db_url: str, lab: str = "00_toy") -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        return {s.student.id: s.score for s in gb.find_assignment(lab).submissions}


def raises_in_own_code(nb):
    """square() fails in the learner's own code when the hidden test calls it with a negative number."""
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "square":
            c.source = (
                "def square(x):\n    if x < 0:\n        raise ValueError(f'square of {x}: negative input not handled')\n"  # noqa: E501
                "    return x * x"
            )


def tampered(nb):
    cell(nb, "test_cube").source = "pass"


def test_term_walkthrough(tmp_path):
    """LMS names -> collect -> parallel autograde -> resubmission with ONLY_NEW -> feedback -> LMS files."""
    course = toy_course(tmp_path / "course")
    first = archive(
        tmp_path / "first.zip",
        [
            ("Zoë O'Brien_104233_assignsubmission_file_/00_toy.ipynb", notebook(course, "reference"), T1),
            ("José María de la Cruz_104240_assignsubmission_file_00_toy (1).ipynb", notebook(course, "hidden"), T1),
            ("smithjohn_1001_5001_00_toy.ipynb", notebook(course, "blank"), T1),
            ("smithjohn_1001_5002_00_toy-1.ipynb", notebook(course, "reference", raises_in_own_code), T2),
            ("doejane_LATE_1002_5003_00_toy-Copy1.ipynb", notebook(course, "reference", tampered), T2),
            ("bob_01_value.ipynb", notebook(course, "reference"), T1),
            ("notes.pdf", "not a notebook", T1),
        ],
    )
    collected = run(course, "collect", "--zip", str(first), "--lab", "00_toy")
    assert collected.returncode == 1, "a skipped file must make collect fail"
    assert "SKIPPED bob_01_value.ipynb: a notebook of 01_value" in collected.stdout
    assert "SKIPPED notes.pdf: not a notebook" in collected.stdout
    assert (
        "smithjohn: 2 files in the archive; keeping the latest, smithjohn_1001_5002_00_toy-1.ipynb" in collected.stdout
    )
    submitted = course / "grader" / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == [
        "doejane",
        "jose-maria-de-la-cruz",
        "smithjohn",
        "zoe-obrien",
    ]
    assert all(any(p.glob("00_toy/*.ipynb")) for p in submitted.iterdir()), "an empty submission folder"
    assert (submitted / "smithjohn" / "00_toy" / "timestamp.txt").read_text().strip() == "2026-03-02 09:30:00 UTC"

    graded = run(course, "autograde", "--lab", "00_toy", "--jobs", "2")
    assert graded.returncode == 0, graded.stdout
    assert CLOSING.search(graded.stdout).group(1) == "4"
    assert "has changed!" not in graded.stdout + graded.stderr and "SAWarning" not in graded.stdout
    assert "doejane: WARNING: the submission changed graded/locked cell test_cube" in graded.stdout
    db = f"sqlite:///{course / 'grader' / 'gradebook.db'}"
    # raises_in_own_code fails the hidden part of test_square only; tampering is undone
    assert learner_scores(db) == {"zoe-obrien": 8, "jose-maria-de-la-cruz": 6, "smithjohn": 6, "doejane": 8}

    second = archive(
        tmp_path / "second.zip",
        [
            ("Zoë O'Brien_104233_assignsubmission_file_/00_toy.ipynb", notebook(course, "reference"), T1),
            ("José María de la Cruz_104240_assignsubmission_file_00_toy.ipynb", notebook(course, "reference"), T3),
        ],
    )
    assert (
        "jose-maria-de-la-cruz (resubmission)" in run(course, "collect", "--zip", str(second), "--lab", "00_toy").stdout
    )
    regraded = run(course, "autograde", "--lab", "00_toy", "--jobs", "2", "--only-new")
    assert regraded.returncode == 0
    assert "jose-maria-de-la-cruz: grading: resubmitted at 2026-03-03 08:00:00" in regraded.stdout
    assert "zoe-obrien: skipping: already graded, not resubmitted since 2026-03-01 10:00:00" in regraded.stdout
    assert CLOSING.search(regraded.stdout).group(1) == "1"
    assert learner_scores(db)["jose-maria-de-la-cruz"] == 8

    pages = run(course, "feedback", "--lab", "00_toy", "--student", "smithjohn", "--jobs", "1")
    assert pages.returncode == 0, pages.stdout
    import html as html_module

    text = html_module.unescape(
        re.sub(r"<[^>]+>", "", (course / "grader/feedback/smithjohn/00_toy/00_toy.html").read_text())
    )
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    assert "square of -2.5: negative input not handled" in text and "in square" in text
    assert "square_negative" not in text and "square of a negative number" not in text

    assert run(course, "grades").returncode == 0
    check_lms_files(course, {"zoe-obrien": 8, "jose-maria-de-la-cruz": 8, "smithjohn": 6, "doejane": 8})
    only = run(course, "grades", "--lab", "01_value")
    assert "labs: none submitted yet" in only.stdout


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def check_lms_files(course: Path, expected: dict[str, float]):
    grader_dir = course / "grader"
    long = read_csv(grader_dir / "grades.csv")
    assert long[0] == ["student", "lab", "score", "max_score", "status"]
    assert {r[0]: float(r[2]) for r in long[1:]} == expected
    # Canvas: Student, ID, SIS User ID, SIS Login ID, Section, then assignments; a Points Possible row
    canvas = read_csv(grader_dir / "grades-canvas.csv")
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] and canvas[0][5:] == ["00_toy"]
    assert canvas[1][0] == "Points Possible" and canvas[1][5:] == ["8"]
    body = canvas[2:]
    assert all(len(r) == len(canvas[0]) and r[1].isdigit() for r in body)
    assert len({r[1] for r in body}) == len(body), "one row per Canvas user"
    assert {r[1]: float(r[5]) for r in body} == {"1001": 6, "1002": 8}
    # Moodle: one row per learner, a user-identifying column, one numeric column per lab
    moodle = read_csv(grader_dir / "grades-moodle.csv")
    assert moodle[0] == ["Full name", "Email address", "00_toy"]
    assert sorted(r[0] for r in moodle[1:]) == sorted(["Zoë O'Brien", "José María de la Cruz", "smithjohn", "doejane"])
    assert all(0 <= float(r[2]) <= 8 for r in moodle[1:])
    sheet = read_csv(grader_dir / "grades-moodle-00_toy.csv")
    assert sheet[0] == ["Identifier", "Full name", "Grade", "Maximum Grade"]
    assert sorted(sheet[1:]) == [
        ["Participant 104233", "Zoë O'Brien", "8", "8"],
        ["Participant 104240", "José María de la Cruz", "8", "8"],
    ]


# ---------------------------------------------------------------- PostgreSQL shards
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """The folder of initdb, pg_ctl and createdb (Debian keeps them out of PATH)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("createdb") else None


@contextmanager
def postgres_server():
    """A throw-away PostgreSQL server on 127.0.0.1 (as the user ``nobody`` when we are root)."""
    bindir = postgres_bin()
    if bindir is None:
        if os.environ.get("MICROGRAD_PLUS_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it")
    folder = Path(tempfile.mkdtemp(prefix="mgp-postgres-"))
    folder.chmod(0o755)
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "nobody")
    port, data = free_port(), folder / "data"
    try:
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "grader", "-A", "trust", "-N", "-E", "UTF8"],
            check=True,
            capture_output=True,
            cwd=folder,
        )
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        subprocess.run(
            [
                *as_user,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(folder / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
            cwd=folder,
        )
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "gradebook"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://grader@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            cwd=folder,
        )
        shutil.rmtree(folder, ignore_errors=True)


def test_two_shards_grade_into_one_postgresql_gradebook(tmp_path):
    with postgres_server() as url:
        first = toy_course(tmp_path / "machine1", url)
        kinds = {"ana": "reference", "ben": "blank", "cleo": "hidden", "dev": "reference"}
        for student, kind in kinds.items():
            path = first / "grader" / "submitted" / student / "00_toy" / "00_toy.ipynb"
            path.parent.mkdir(parents=True)
            path.write_text(notebook(first, kind))
        # the second machine: the same repository and submissions, its own grader state
        second = tmp_path / "machine2"
        shutil.copytree(first, second, symlinks=True)
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "grader.autograde", "--lab", "00_toy", "--shard", f"{i}/2", "--jobs", "1"],
                cwd=course,
                env=env_for(course, url),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i, course in ((1, first), (2, second))
        ]
        outputs = [p.communicate(timeout=600)[0] for p in procs]
        print("\n----\n".join(outputs))
        assert [p.returncode for p in procs] == [0, 0]
        assert [CLOSING.search(o).group(1) for o in outputs] == ["2", "2"]
        assert "shard 1/2" in outputs[0] and "postgresql+psycopg://grader@127.0.0.1" in outputs[0]
        shard_of = {s: 1 if (first / "grader/autograded" / s).exists() else 2 for s in kinds}
        assert shard_of == {"ana": 1, "ben": 2, "cleo": 1, "dev": 2}
        assert not any((second / "grader/autograded" / s).exists() for s in ("ana", "cleo"))
        scores = learner_scores(url.replace("postgresql://", "postgresql+psycopg://"))
        assert scores == {"ana": 8, "ben": 0, "cleo": 6, "dev": 8}
        grades = run(first, "grades", db_url=url)
        assert grades.returncode == 0
        assert {r[0]: float(r[2]) for r in read_csv(first / "grader" / "grades.csv")[1:]} == scores
