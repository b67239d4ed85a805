"""The documentation is checked like code: the API reference is regenerated and compared,
the tutorial's code runs, and every relative link in the Markdown points at a file."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "docker" / "README.md",
    ROOT / "data" / "README.md",
]


def test_api_reference_is_up_to_date():
    from tools.apidoc import API_MD, render

    assert API_MD.exists(), "docs/API.md is missing: run `make docs`"
    assert API_MD.read_text(encoding="utf-8") == render(), "docs/API.md is stale: run `make docs` and commit it"


def test_readme_pictures_are_the_notebooks_outputs():
    from tools.apidoc import rendered_figures

    for path, data in rendered_figures().items():
        assert path.exists() and path.read_bytes() == data, f"{path.name} is stale: run `make docs` and commit it"
        assert f"images/{path.name}" in (ROOT / "README.md").read_text(encoding="utf-8") or path.suffix == ".svg"


def test_readme_points_match_the_notebooks():
    from test_instructors_guide import notebook_points
    from grader.export import lab_notebooks

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for nb in lab_notebooks(ROOT / "solutions"):
        row = next((line for line in readme.splitlines() if line.startswith(f"| [{nb.parent.name}]")), None)
        assert row, f"README's course map has no row for {nb.parent.name}"
        assert row.rstrip(" |").split("|")[-1].strip() == str(notebook_points(nb)), (
            f"README points for {nb.parent.name}"
        )


def test_every_public_name_has_a_docstring_with_an_example():
    import importlib

    import micrograd_plus

    missing = []
    for name in micrograd_plus.SUBMODULES:
        module = importlib.import_module(f"micrograd_plus.{name}")
        for public in getattr(module, "__all__", []):
            obj = getattr(module, public)
            if getattr(obj, "__module__", module.__name__) != module.__name__ or not callable(obj):
                continue
            if not obj.__doc__ or ">>>" not in obj.__doc__:
                missing.append(f"{name}.{public}")
    assert not missing, f"public names without a docstring example: {missing}"


@pytest.mark.parametrize("doc", [d for d in DOCS if d.exists()], ids=lambda d: str(d.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    text = doc.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        if not (doc.parent / target).exists():
            broken.append(target)
    assert not broken, f"{doc.name} links to missing files: {broken}"


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
def test_tutorial_code_runs(tmp_path):
    tutorial = ROOT / "docs" / "TUTORIAL.md"
    blocks = _python_blocks(tutorial)
    assert blocks, "docs/TUTORIAL.md has no python code blocks"
    script = tmp_path / "tutorial.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"a TUTORIAL.md code block failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def _make_commands(path: Path) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("make ")]


@pytest.mark.parametrize("doc", ["README.md", "docs/TUTORIAL.md"])
def test_every_make_command_in_the_docs_exists(doc):
    commands = _make_commands(ROOT / doc)
    assert commands, f"{doc} shows no make command"
    for command in commands:
        # -n prints what would run without running it; an unknown target or variable error fails
        result = subprocess.run(
            command.replace("make ", "make -n ", 1), shell=True, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"`{command}` from {doc} does not work:\n{result.stderr}"
