"""A learner-only copy of the course: ``make student-release`` (grader/student-release/).

``python -m grader.student_release [--dest DIR] [--archive] [--no-check]``

The copy is the committed tree without ``solutions/``, the tests, the grader's state and
the instructor-only grading commands; ``micrograd_plus/`` is exported from the learner
labs (stubs that raise NotImplementedError until the learner fills them in:
``python -m grader.export --from labs --dest <copy>/micrograd_plus``). It is a git
repository with one commit, so ``make reset-package`` works there. The smoke check
imports the package, starts JupyterLab on a random port (and asks it for
``/api/contents``), and runs ``make validate`` on the first lab, which must report the
stubs' failing tests (exit 1) rather than crash.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

from grader.course import ROOT

LEAVE_OUT = {"solutions", "tests", ".ci", "bench", "tools"}
GRADER_FILES = (
    "__init__.py",
    "nbgrader_config.py",
    "export.py",
    "validate.py",
    "course.py",
    "release.py",
    "hardening.py",
    "guard.py",
    "mylabs.py",
    "validation_report.py",
    "learner_lab.py",
    "sandbox.py",
    "sandbox_runner.py",
    "checks.py",
    "verdicts.py",
    "database.py",  # course.py finds the gradebook through it
)
LEARNER_JUPYTER = ("grader", "jupyter", "learner")  # the learner's JupyterLab configuration
# weights trained here (make cifar; git-ignored, so only a tree read without git has them): a learner hands in
# weights they trained (lab 10's graded accuracy)
REFERENCE_RESULTS = {Path("results/10_conv/cnn_weights.npz")}

README = """# MicroGrad+ (learner edition)

Build an autograd engine and a small neural-network library, lab by lab.

    make lab                      # create .venv and open JupyterLab on your copies, mylabs/ (PORT=8888)
    make validate LAB=01_value    # check a lab (or use the Validate button in JupyterLab)
    make export-mine LAB=01_value # put YOUR code into micrograd_plus/ for the later labs
    make reset-package            # back to the package as you received it

Work through the labs in order, in `mylabs/`: your own copies, created from the released
`labs/` by `make lab` and never overwritten (an updated release appears next to your copy as
`NN_topic.updated.ipynb`). `micrograd_plus/` holds stubs (`NotImplementedError`) until
you export your own labs into it. Graded tests include hidden tests: passing
`make validate` is necessary, not sufficient. Hand in `mylabs/NN_topic/NN_topic.ipynb`.
"""


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode == 0 and out.stdout:
        return [Path(p) for p in out.stdout.split("\0") if p]
    return [
        p.relative_to(ROOT) for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts
    ]


def ships(rel: Path) -> bool:
    """Does the learner edition include the tracked file ``rel``?

    >>> ships(Path("labs/01_value/01_value.ipynb")), ships(Path("solutions/01_value/01_value.ipynb"))
    (True, False)
    >>> ships(Path("results/10_conv/cnn_weights.npz")), ships(Path("results/10_conv/train.log"))
    (False, True)
    """
    if rel.parts[0] in LEAVE_OUT or rel.parts[0] == "micrograd_plus" or rel in REFERENCE_RESULTS:
        return False
    return not (rel.parts[0] == "grader" and rel.name not in GRADER_FILES and rel.parts[:3] != LEARNER_JUPYTER)


def build(dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    for rel in _tracked_files():
        if not ships(rel):
            continue
        if not (ROOT / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    (dest / "README.md").write_text(README, encoding="utf-8")
    docs = dest / "docs"
    if (docs / "INSTRUCTORS.md").exists():
        (docs / "INSTRUCTORS.md").unlink()
    subprocess.run(
        [sys.executable, "-m", "grader.export", "--from", "labs", "--dest", str(dest / "micrograd_plus")],
        cwd=ROOT,
        check=True,
    )
    git = ["git", "-c", "user.name=MicroGrad+", "-c", "user.email=course@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "."], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "MicroGrad+ learner edition"], cwd=dest, check=True)
    print(
        f"wrote the learner copy {dest} ({sum(1 for _ in dest.rglob('*') if '.git' not in _.parts)} files,"
        " no solutions/, micrograd_plus/ exported from labs/)"
    )
    return dest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smoke_check(dest: Path) -> int:
    env = dict(os.environ, PYTHONPATH=str(dest), MPLBACKEND="Agg")
    env.pop("MICROGRAD_PLUS_COURSE_ROOT", None)
    failures = 0
    # 1. the package imports and names its stubs
    proc = subprocess.run(
        [sys.executable, "-c", "import micrograd_plus as m; print(m.__file__, len(m.__all__))"],
        cwd=dest,
        env=env,
        capture_output=True,
        text=True,
    )
    ok = proc.returncode == 0 and str(dest) in proc.stdout
    failures += not ok
    print(f"[{'ok' if ok else 'FAIL'}] import micrograd_plus: {proc.stdout.strip() or proc.stderr.strip()[-300:]}")
    # 2. JupyterLab starts and serves the labs
    port, token = _free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={dest}",
            "--ServerApp.open_browser=False",
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        ],
        cwd=dest,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    listing = None
    try:
        for _ in range(60):
            time.sleep(1)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/labs?token={token}", timeout=5) as r:
                    listing = r.read().decode()
                break
            except OSError:
                if server.poll() is not None:
                    break
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    ok = listing is not None and '"name"' in listing
    failures += not ok
    print(f"[{'ok' if ok else 'FAIL'}] JupyterLab served /api/contents/labs on port {port}")
    # 3. make validate runs on the first lab and reports the stubs' failing tests
    labs = sorted(p.name for p in (dest / "labs").iterdir() if p.is_dir())
    if labs:
        venv = Path(sys.executable).parent.parent
        proc = subprocess.run(
            ["make", "validate", f"LAB={labs[0]}", f"VENV={venv}"], cwd=dest, env=env, capture_output=True, text=True
        )
        shutil.rmtree(dest / "mylabs", ignore_errors=True)  # the learner's copies `make validate` made
        ok = proc.returncode != 0 and "VALIDATION FAILED" in proc.stdout
        failures += not ok
        print(
            f"[{'ok' if ok else 'FAIL'}] make validate LAB={labs[0]} reports the unfinished lab "
            f"(exit {proc.returncode})" + ("" if ok else "\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
        )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=ROOT / "grader" / "student-release")
    parser.add_argument("--archive", action="store_true", help="also write <dest>.tar.gz")
    parser.add_argument("--no-check", action="store_true", help="skip the smoke check")
    args = parser.parse_args(argv)
    dest = build(args.dest.resolve())
    status = 0 if args.no_check else smoke_check(dest)
    if args.archive:
        archive = dest.with_suffix(".tar.gz")
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(dest, arcname="micrograd-plus")
        print(f"wrote {archive}")
    return status


if __name__ == "__main__":
    sys.exit(main())
