"""Run a notebook inside a bubblewrap sandbox, under resource limits and a watchdog.

Only the notebook's kernel and the cell executor (``grader/sandbox_runner.py``, copied in
alone) run inside. What they see:

- the system (``/usr``, ``/lib*``, ``/bin``, ``/etc``), the Python installation and the
  course virtualenv, all read-only;
- ``/grading``: a fresh private folder holding the notebook, the lab's other released
  files, a staged ``micrograd_plus`` (the reference for the labs *before* the one being
  graded, the learner edition with stubs for that lab and later ones), the
  ``grader.checks`` recording API and the datasets (read-only). Nothing else of the
  course: no ``solutions/``, gradebook, ``grader/``, other learners' files;
- no network, their own PID/IPC/UTS namespaces (``--unshare-all``), a new session, and
  they die with the grader (``--die-with-parent``);
- rlimits: address space, CPU time, processes, file size; an output cap in the runner;
- a watchdog outside: the runner must report progress within ``cell timeout + margin``
  and finish within the notebook's wall-clock limit, otherwise the whole sandbox is killed.

:func:`execute` returns the executed notebook (read back and size-checked by the caller's
process) or the reason it could not be executed. Missing ``bwrap`` is an error
(:class:`SandboxUnavailable`): grading never falls back to running submissions unsandboxed.
"""

from __future__ import annotations

import hashlib
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
INSIDE = "/grading"

MEMORY_LIMIT = int(os.environ.get("MICROGRAD_PLUS_SANDBOX_MEMORY", str(4 << 30)))  # bytes of address space
FILE_LIMIT = int(os.environ.get("MICROGRAD_PLUS_SANDBOX_FILESIZE", str(256 << 20)))  # bytes per file written
PROCESS_LIMIT = int(os.environ.get("MICROGRAD_PLUS_SANDBOX_NPROC", "256"))
OUTPUT_LIMIT = int(os.environ.get("MICROGRAD_PLUS_SANDBOX_OUTPUT", str(20 << 20)))  # bytes of cell output
RESULT_LIMIT = 2 * OUTPUT_LIMIT + (32 << 20)  # the executed notebook read back


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or does not work here: grading refuses to run unsandboxed."""


@dataclass
class Outcome:
    notebook: Any  # the executed notebook (an nbformat NotebookNode), or None
    reason: str | None  # why there is no notebook ("killed by signal 9", ...)
    seconds: float
    log: str = ""


def bwrap() -> str:
    path = shutil.which("bwrap")
    if not path:
        raise SandboxUnavailable(
            "bubblewrap ('bwrap') is not installed: submissions are only ever run inside its sandbox.\n"
            "  Debian/Ubuntu: sudo apt-get install -y bubblewrap    Fedora: sudo dnf install -y bubblewrap"
        )
    return path


def check() -> None:
    """Raise :class:`SandboxUnavailable` unless a trivial sandbox starts here."""
    proc = subprocess.run([bwrap(), *_base_args(), "--", "/bin/true"], capture_output=True, text=True)
    if proc.returncode:
        raise SandboxUnavailable(
            f"bubblewrap cannot create a sandbox here: {proc.stderr.strip()}\n"
            "  (unprivileged user namespaces must be enabled: sysctl kernel.unprivileged_userns_clone=1)"
        )


def _base_args() -> list[str]:
    args = [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
    ]
    for system in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"):
        if os.path.exists(system):
            args += ["--ro-bind", system, system]
    for prefix in {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}:
        if not any(prefix == s or prefix.startswith(s + "/") for s in ("/usr", "/bin", "/lib")):
            args += ["--ro-bind", prefix, prefix]
    return args


def _limits(cpu_seconds: int):
    def apply():
        os.setsid()
        for limit, value in (
            (resource.RLIMIT_AS, MEMORY_LIMIT),
            (resource.RLIMIT_FSIZE, FILE_LIMIT),
            (resource.RLIMIT_NPROC, PROCESS_LIMIT),
            (resource.RLIMIT_CPU, cpu_seconds),
            (resource.RLIMIT_CORE, 0),
        ):
            try:
                resource.setrlimit(limit, (value, value))
            except (ValueError, OSError):
                pass

    return apply


# ---------------------------------------------------------------- the staged package
_STAGED: dict[tuple[str, str], Path] = {}

# Modules kept as the reference while their own lab is graded (none: every graded cell brings its own
# checker or records its results for the grader).
KEEP_REFERENCE: dict[str, tuple[str, ...]] = {}


def _module_lab(module: Path) -> str | None:
    first = module.read_text(encoding="utf-8").split("\n", 1)[0]
    marker = "solutions/"
    return first.split(marker, 1)[1].split("/", 1)[0] if marker in first else None


def staged_package(root: Path, lab: str) -> Path:
    """``micrograd_plus`` as a learner of ``lab`` has it after the earlier labs: the reference
    modules of earlier labs, the learner edition (stubs, exported from ``labs/``) of the rest.
    Built once per (course, lab, sources) in ``grader/staged/`` (git-ignored; never seen by a
    sandbox, which gets a copy) and shared by the grading processes."""
    key = (str(root), lab)
    if key in _STAGED and _STAGED[key].exists():
        return _STAGED[key]
    # parallel graders (one process per submission) share one build, keyed by the sources' digest
    digest = hashlib.sha256(lab.encode())
    for source in [*sorted((root / "labs").rglob("*.ipynb")), *sorted((root / "micrograd_plus").rglob("*.py"))]:
        digest.update(str(source.relative_to(root)).encode() + b"\0" + source.read_bytes())
    shared = root / "grader" / "staged" / f"{lab}-{digest.hexdigest()[:20]}"
    if (shared / "micrograd_plus").is_dir():
        _STAGED[key] = shared / "micrograd_plus"
        return _STAGED[key]
    from grader.export import export

    shared.parent.mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(prefix=f".{lab}-", dir=shared.parent))
    learner = dest / "learner"
    export("labs", None, learner) if (root / "labs").is_dir() else None
    package = dest / "micrograd_plus"
    shutil.copytree(root / "micrograd_plus", package, ignore=shutil.ignore_patterns("__pycache__"))
    for module in sorted(package.glob("*.py")):
        owner = _module_lab(module)
        if owner and owner >= lab and module.stem not in KEEP_REFERENCE.get(lab, ()):
            stub = learner / module.name
            if stub.exists():
                shutil.copy2(stub, module)
            else:
                module.unlink()
    shutil.rmtree(learner, ignore_errors=True)
    try:
        dest.rename(shared)
    except OSError:  # another grader finished the same build first
        shutil.rmtree(dest, ignore_errors=True)
    _STAGED[key] = shared / "micrograd_plus"
    return _STAGED[key]


def _data_binds(root: Path) -> tuple[list[str], dict[str, str]]:
    """The course's datasets, read-only, as local copies for ``micrograd_plus.data`` to import
    (verified) into a scratch data folder inside the sandbox."""
    args, sources = [], []
    folders = [
        root / "data",
        root.parent / "shared" / "datasets",
        *[Path(p) for p in os.environ.get("MICROGRAD_PLUS_DATA_FROM", "").split(os.pathsep) if p],
    ]
    for index, folder in enumerate(folders):
        if folder.is_dir():
            inside = f"{INSIDE}/datasets/{index}"
            args += ["--ro-bind", str(folder.resolve()), inside]
            sources.append(inside)
    return args, {"MICROGRAD_PLUS_DATA": f"{INSIDE}/home/data", "MICROGRAD_PLUS_DATA_FROM": os.pathsep.join(sources)}


# ---------------------------------------------------------------- running
SUBMITTED_FILE_LIMIT = 8 * 2**20  # bytes of one file a learner hands in with the notebook (lab 10's weights)


def execute(
    nb,
    root: Path,
    lab: str,
    cell_timeout: int,
    wall_limit: int | None = None,
    lab_files: Path | None = None,
    progress=None,
    submitted_files=(),
) -> Outcome:
    """Execute notebook ``nb`` (not modified) of ``lab`` in a fresh sandbox; see the module docstring.

    ``lab_files``: a folder whose other files (helpers, small data) are copied next to the
    notebook (default ``<root>/labs/<lab>``, the released lab). ``submitted_files``: files the
    learner handed in with the notebook (``grader.release.REFERENCE_ONLY``, e.g. lab 10's trained
    weights), copied next to it when they are plain files of at most ``SUBMITTED_FILE_LIMIT`` bytes.
    ``progress(done, total)`` is called as cells finish.
    """
    exe = bwrap()
    code_cells = sum(c.cell_type == "code" for c in nb.cells)
    wall_limit = wall_limit or (cell_timeout + 15) * max(code_cells, 1) + 60
    stall_limit = cell_timeout + 40  # the runner's own timeout + restart margin
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mgp-sandbox-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        lab_dir = work / "lab"
        source = lab_files or root / "labs" / lab
        if source.is_dir():
            shutil.copytree(
                source, lab_dir, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__")
            )
        lab_dir.mkdir(exist_ok=True)
        for file in submitted_files:
            file = Path(file)
            if file.is_file() and not file.is_symlink() and file.stat().st_size <= SUBMITTED_FILE_LIMIT:
                shutil.copyfile(file, lab_dir / file.name)
        nbformat.write(nb, lab_dir / f"{lab}.ipynb")
        pkg = work / "pkg"
        shutil.copytree(staged_package(root, lab), pkg / "micrograd_plus")
        (pkg / "grader").mkdir()
        (pkg / "grader" / "__init__.py").write_text("")
        shutil.copy2(HERE / "checks.py", pkg / "grader" / "checks.py")
        shutil.copy2(HERE / "sandbox_runner.py", work / "runner.py")
        data_args, data_env = _data_binds(root)
        env = {
            "HOME": f"{INSIDE}/home",
            "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
            "PYTHONPATH": f"{INSIDE}/pkg",
            "MPLBACKEND": "Agg",
            "PYTHONHASHSEED": "0",
            "JUPYTER_RUNTIME_DIR": f"{INSIDE}/home/runtime",
            "IPYTHONDIR": f"{INSIDE}/home/ipython",
            "MICROGRAD_PLUS_SANDBOX": "1",
            "LANG": "C.UTF-8",
            **data_env,
        }
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = os.environ.get(name, "1")
        args = [exe, *_base_args(), "--bind", str(work), INSIDE, *data_args]
        for name, value in env.items():
            args += ["--setenv", name, value]
        args += [
            "--chdir",
            f"{INSIDE}/lab",
            "--",
            sys.executable,
            f"{INSIDE}/runner.py",
            f"{lab}.ipynb",
            f"{INSIDE}/out.ipynb",
            "--cell-timeout",
            str(cell_timeout),
            "--output-limit",
            str(OUTPUT_LIMIT),
        ]
        log_path = work / "runner.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=_limits(wall_limit)
            )
            reason = _watch(proc, start, wall_limit, stall_limit, progress)
        seconds = time.perf_counter() - start
        # the sandbox could have replaced its files by links or pipes: read only plain files
        plain = log_path.is_file() and not log_path.is_symlink() and log_path.stat().st_size < RESULT_LIMIT
        log_text = log_path.read_bytes()[-4000:].decode("utf-8", "replace") if plain else ""
        out = work / "out.ipynb"
        if reason is None and proc.returncode != 0:
            code = proc.returncode
            reason = (
                f"the notebook's executor was killed by signal {-code if code < 0 else code - 128}"
                if code < 0 or code > 128
                else f"the notebook's executor stopped with exit status {code}"
            )
            if "MemoryError" in log_text:
                reason += " (out of memory)"
        if reason is None and (not out.is_file() or out.is_symlink()):
            reason = "the notebook's executor wrote no result"
        if reason is None and out.stat().st_size > RESULT_LIMIT:
            reason = f"the executed notebook is larger than {RESULT_LIMIT} bytes"
        if reason is not None:
            return Outcome(None, reason, seconds, log_text)
        try:
            executed = nbformat.read(out, as_version=4)
        except Exception as error:  # a damaged file is the submission's doing
            return Outcome(None, f"the executed notebook could not be read ({type(error).__name__})", seconds, log_text)
        return Outcome(executed, None, seconds, log_text)


def _watch(proc, start, wall_limit, stall_limit, progress) -> str | None:
    """Read the runner's progress lines; kill the sandbox when it stalls or overruns."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    last, buffer, reason = time.perf_counter(), b"", None
    while True:
        now = time.perf_counter()
        if now - start > wall_limit:
            reason = f"the notebook ran longer than its wall-clock limit of {wall_limit} s"
        elif now - last > stall_limit:
            reason = f"the notebook made no progress for {stall_limit} s (stopped, hung or killed executor)"
        if reason:
            _kill(proc)
            return reason
        if sel.select(timeout=1.0):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer = (buffer + chunk)[-4096:]
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                last = time.perf_counter()
                parts = line.split()
                if progress and len(parts) == 3 and parts[0] == b"progress":
                    progress(int(parts[1]), int(parts[2]))
    try:
        proc.wait(timeout=max(1.0, wall_limit - (time.perf_counter() - start)))
    except subprocess.TimeoutExpired:
        _kill(proc)
        return "the notebook's executor did not exit after finishing"
    return None


def _kill(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
