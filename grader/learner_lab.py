"""The learner's JupyterLab (``make lab``): the *Validate* button speaks the course's language.

A Jupyter server extension, enabled only by the learner's configuration
(``grader/jupyter/learner/``, put on ``JUPYTER_CONFIG_PATH`` by ``make lab``), which also
switches off nbgrader's instructor-only extensions (formgrader, generate and release,
course list) and the Assignment List (the course hands labs out through git or the LMS,
not nbgrader's exchange). It serves nbgrader's validate endpoint with the course's
report (grader/validation_report.py: the number of failing test cells first, then each
one's message, tracebacks after) and the stylesheet ``grader/jupyter/learner/custom/custom.css``,
which words a pass as "hidden tests run when the lab is graded". It also refuses to save
into ``labs/`` (the release, which ``make release`` and ``git pull`` replace), naming the
learner's copy in ``mylabs/`` instead. ``make lab-instructor`` runs JupyterLab without this
configuration: every nbgrader extension as installed, ``labs/`` writable.
"""

from __future__ import annotations

import inspect
from pathlib import Path, PurePosixPath

from grader import validation_report

LEARNER_CONFIG = Path(__file__).resolve().parent / "jupyter" / "learner"
CUSTOM_CSS_DIR = LEARNER_CONFIG / "custom"


def _handlers():
    from nbgrader.server_extensions.validate_assignment.handlers import (
        NbGraderVersionHandler,
        ValidateAssignmentHandler,
    )

    class CourseValidateHandler(ValidateAssignmentHandler):
        """nbgrader's validation, answered with the course's report."""

        def validate_notebook(self, path):
            answer = super().validate_notebook(path)
            if answer.get("success") and isinstance(answer.get("value"), dict):
                notebook = (Path(self.root_dir) / path).resolve()
                answer["value"] = validation_report.dialog_value(answer["value"], notebook)
            return answer

    return [(r"/assignments/validate", CourseValidateHandler), (r"/nbgrader_version", NbGraderVersionHandler)]


RELEASE = "labs"


def release_refusal(path: str) -> str | None:
    """Why ``path`` (relative to the course root) may not be saved by a learner, or None.

    >>> release_refusal("mylabs/01_value/01_value.ipynb") is None
    True
    >>> release_refusal("/labs/01_value/01_value.ipynb").split(":")[0]
    'labs/01_value/01_value.ipynb is the released lab'
    """
    parts = PurePosixPath(path.strip("/")).parts
    if len(parts) < 2 or parts[0] != RELEASE:
        return None
    mine = PurePosixPath("mylabs", *parts[1:])
    return (
        f"{PurePosixPath(*parts)} is the released lab: course updates replace it, so it is not saved. "
        f"Your copy is {mine} (make lab creates it); work there, or save this one under mylabs/."
    )


def _check_not_the_release(path: str) -> None:
    from tornado.web import HTTPError

    refusal = release_refusal(path)
    if refusal:
        raise HTTPError(403, refusal)


def guarded_class(base: type) -> type:
    """``base``, a contents manager class, refusing saves into ``labs/`` (sync or async alike)."""
    if getattr(base, "_refuses_the_release", False):
        return base
    if inspect.iscoroutinefunction(base.save):  # type: ignore[attr-defined]

        class Guarded(base):
            async def save(self, model, path=""):
                _check_not_the_release(path)
                return await super().save(model, path)
    else:

        class Guarded(base):  # type: ignore[no-redef]
            def save(self, model, path=""):
                _check_not_the_release(path)
                return super().save(model, path)

    Guarded._refuses_the_release = True
    Guarded.__name__ = Guarded.__qualname__ = base.__name__
    return Guarded


def _guard_the_release(contents_manager) -> None:
    """Make a live contents manager refuse saves into ``labs/``."""
    contents_manager.__class__ = guarded_class(type(contents_manager))


def _jupyter_server_extension_points():
    return [{"module": "grader.learner_lab"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.utils import url_path_join

    web_app = serverapp.web_app
    web_app.settings["root_dir"] = serverapp.root_dir
    web_app.add_handlers(
        ".*$", [(url_path_join(web_app.settings["base_url"], pattern), handler) for pattern, handler in _handlers()]
    )
    # JupyterLab serves custom/custom.css (LabApp.custom_css) from these folders, first match wins
    web_app.settings["static_custom_path"].insert(0, str(CUSTOM_CSS_DIR))
    # the live manager, and its class: an extension loaded later (jupytext) derives a new manager from it
    _guard_the_release(serverapp.contents_manager)
    serverapp.contents_manager_class = guarded_class(serverapp.contents_manager_class)
    serverapp.log.info("MicroGrad+ learner mode: nbgrader's instructor tools are off (make lab-instructor has them)")
