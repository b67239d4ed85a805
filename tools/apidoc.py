"""Generate docs/API.md from the docstrings of ``micrograd_plus`` (``make docs``).

Also copies the README's pictures out of the committed notebook outputs into docs/images/.

Modules appear in course order (the lab that generates each), every public name of a
module's ``__all__`` with its signature and docstring, and a link to the lab notebook
that builds it. The output depends only on the code, so running it twice changes no
byte; ``make test`` fails when API.md is stale (tests/test_docs.py).

    python -m tools.apidoc            # write docs/API.md
    python -m tools.apidoc --check    # exit 1 if docs/API.md is stale
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API_MD = ROOT / "docs" / "API.md"
IMAGES = ROOT / "docs" / "images"

# Pictures for the README, taken from the committed outputs of the solution notebooks:
# (file written, notebook, text that identifies the cell, output MIME type)
FIGURES = [
    ("computation_graph.svg", "solutions/01_value/01_value.ipynb", "draw_graph(o)", "image/svg+xml"),
    ("mnist_training_curves.png", "solutions/06_mnist/06_mnist.ipynb", "plot_training_history(", "image/png"),
]


def figure_bytes(notebook: str, marker: str, mime: str) -> bytes:
    """The first ``mime`` output of the first cell of ``notebook`` whose source contains ``marker``."""
    import base64

    import nbformat

    nb = nbformat.read(ROOT / notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and marker in cell.source:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if mime in data:
                    payload = data[mime]
                    return payload.encode("utf-8") if mime.startswith("image/svg") else base64.b64decode(payload)
    raise SystemExit(f"error: no {mime} output in a cell of {notebook} containing {marker!r}; execute the notebook")


def rendered_figures() -> dict[Path, bytes]:
    return {IMAGES / name: figure_bytes(nb, marker, mime) for name, nb, marker, mime in FIGURES}


def _notebook_of(module) -> str:
    first = Path(module.__file__).read_text(encoding="utf-8").splitlines()[0]
    match = re.search(r"File to edit: \.\./(\S+?\.ipynb)", first)
    return match.group(1) if match else ""


def _signature(obj) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""
    return re.sub(r" at 0x[0-9a-f]+", "", sig)


def _doc(obj) -> str:
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else "*(no docstring)*"


def _constant(name: str, value) -> str:
    """A constant's value when it is short and stable; its type and size otherwise.

    (The repr of a table of functions holds memory addresses, which change every run.)
    """
    text = repr(value)
    if len(text) <= 100 and " at 0x" not in text:
        return f"`{name} = {text}`"
    size = f" of {len(value)} items" if hasattr(value, "__len__") else ""
    return f"`{name}`: a `{type(value).__name__}`{size}."


def _members(cls):
    """Public methods and properties defined on the class itself, in source order."""
    for name, member in cls.__dict__.items():
        if name.startswith("_") and name not in ("__call__", "__init__"):
            continue
        if name == "__init__":
            continue
        target = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
        if callable(target) and target.__doc__:
            yield name, member, target


def module_section(name: str) -> list[str]:
    module = importlib.import_module(f"micrograd_plus.{name}")
    notebook = _notebook_of(module)
    lab = notebook.split("/")[1] if notebook.count("/") >= 2 else ""
    out = [f"## `micrograd_plus.{name}`", ""]
    if notebook:
        out += [f"Built in lab [{lab}](../{notebook}) (learner version: [labs/{lab}](../labs/{lab}/{lab}.ipynb)).", ""]
    if module.__doc__:
        out += [inspect.cleandoc(module.__doc__), ""]
    for public in getattr(module, "__all__", []):
        obj = getattr(module, public)
        if inspect.ismodule(obj):
            continue
        if getattr(obj, "__module__", f"micrograd_plus.{name}") != f"micrograd_plus.{name}":
            out += [f"### `{public}`", "", f"Re-exported from `{obj.__module__}`.", ""]
            continue
        kind = "class" if inspect.isclass(obj) else ("function" if callable(obj) else "constant")
        sig = _signature(obj) if callable(obj) else ""
        out += [
            f"### {kind} `{public}{sig}`",
            "",
            _doc(obj) if callable(obj) or inspect.isclass(obj) else _constant(public, obj),
            "",
        ]
        if inspect.isclass(obj):
            for member_name, member, target in _members(obj):
                label = "property" if isinstance(member, property) else "method"
                msig = "" if isinstance(member, property) else _signature(target)
                out += [f"#### {label} `{public}.{member_name}{msig}`", "", inspect.cleandoc(target.__doc__), ""]
    return out


def render() -> str:
    import micrograd_plus

    lines = [
        "# API reference",
        "",
        "<!-- Generated by `make docs` (tools/apidoc.py) from the docstrings; do not edit. -->",
        "",
        "Every module of `micrograd_plus` is generated from a lab notebook; each section links to it.",
        "The examples are doctests, run by `make test`.",
        "",
        "**Two spellings, one behaviour.** The canonical names and keywords are PyTorch's; the course documents'",
        "spellings are accepted as thin wrappers that do exactly the same: `SGDMomentum` (= `SGD(momentum=0.9)`),",
        "`WarmupLR(optimizer, warmup_epochs, base_scheduler)`",
        "(= `LinearWarmupLR(optimizer, warmup_steps, after=...)`),",
        "`Adam(beta1=, beta2=, epsilon=)` (= `betas=(beta1, beta2)`, `eps=`), `RMSprop(beta=, epsilon=)`",
        "(= `alpha=`, `eps=`), `visualize_computation_graph` (= `draw_graph`), and `dim=`/`keepdim=` wherever",
        "`axis=`/`keepdims=` are taken. `train_epoch(model, dataloader, loss_fn, optimizer)` and",
        "`evaluate(model, dataloader, loss_fn)` have no PyTorch counterpart: the documents' names are canonical.",
        "",
        "Modules, in course order: " + ", ".join(f"[`{m}`](#micrograd_plus{m})" for m in micrograd_plus.SUBMODULES),
        "",
    ]
    for name in micrograd_plus.SUBMODULES:
        lines += module_section(name)
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/API.md is stale")
    args = parser.parse_args(argv)
    outputs = {API_MD: render().encode("utf-8"), **rendered_figures()}
    if args.check:
        stale = [p for p, data in outputs.items() if not p.exists() or p.read_bytes() != data]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run `make docs` and commit it")
        return 1 if stale else 0
    IMAGES.mkdir(parents=True, exist_ok=True)
    for path, data in outputs.items():
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
