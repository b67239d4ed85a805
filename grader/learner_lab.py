"""The learner's JupyterLab (``make lab``): the *Validate* button speaks the course's language.

A Jupyter server extension, enabled only by the learner's configuration
(``grader/jupyter/learner/``, put on ``JUPYTER_CONFIG_PATH`` by ``make lab``), which also
switches off nbgrader's instructor-only extensions (formgrader, generate and release,
course list) and the Assignment List (the course hands labs out through git or the LMS,
not nbgrader's exchange). It serves nbgrader's validate endpoint with the course's
report (grader/validation_report.py: the number of failing test cells first, then each
one's message, tracebacks after) and the stylesheet ``grader/jupyter/learner/custom/custom.css``,
which words a pass as "hidden tests run when the lab is graded". ``make lab-instructor``
runs JupyterLab without this configuration: every nbgrader extension as installed.
"""
from __future__ import annotations

from pathlib import Path

from grader import validation_report

LEARNER_CONFIG = Path(__file__).resolve().parent / "jupyter" / "learner"
CUSTOM_CSS_DIR = LEARNER_CONFIG / "custom"


def _handlers():
    from nbgrader.server_extensions.validate_assignment.handlers import (
        NbGraderVersionHandler, ValidateAssignmentHandler)

    class CourseValidateHandler(ValidateAssignmentHandler):
        """nbgrader's validation, answered with the course's report."""

        def validate_notebook(self, path):
            answer = super().validate_notebook(path)
            if answer.get("success") and isinstance(answer.get("value"), dict):
                notebook = (Path(self.root_dir) / path).resolve()
                answer["value"] = validation_report.dialog_value(answer["value"], notebook)
            return answer

    return [(r"/assignments/validate", CourseValidateHandler), (r"/nbgrader_version", NbGraderVersionHandler)]


def _jupyter_server_extension_points():
    return [{"module": "grader.learner_lab"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.utils import url_path_join

    web_app = serverapp.web_app
    web_app.settings["root_dir"] = serverapp.root_dir
    web_app.add_handlers(".*$", [(url_path_join(web_app.settings["base_url"], pattern), handler)
                                 for pattern, handler in _handlers()])
    # JupyterLab serves custom/custom.css (LabApp.custom_css) from these folders, first match wins
    web_app.settings["static_custom_path"].insert(0, str(CUSTOM_CSS_DIR))
    serverapp.log.info("MicroGrad+ learner mode: nbgrader's instructor tools are off (make lab-instructor has them)")
