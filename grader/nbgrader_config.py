"""nbgrader configuration of the course (loaded by the two-line nbgrader_config.py at the root).

solutions/NN_topic/NN_topic.ipynb  -- nbgrader's *source*  (the instructor notebooks)
labs/NN_topic/NN_topic.ipynb       -- nbgrader's *release* (what learners get)
grader/submitted, grader/autograded, grader/feedback, grader/gradebook.db  -- git-ignored state
"""

import os
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821

ROOT = Path(os.environ.get("MICROGRAD_PLUS_COURSE_ROOT", Path(__file__).resolve().parent.parent))

c.CourseDirectory.course_id = "micrograd-plus"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "labs"
c.CourseDirectory.submitted_directory = "grader/submitted"
c.CourseDirectory.autograded_directory = "grader/autograded"
c.CourseDirectory.feedback_directory = "grader/feedback"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

# A stub that fails loudly and names what to do.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Every cell with a solution region must be marked as a solution cell in its metadata.
c.ClearSolutions.enforce_metadata = True

# Per-cell execution limit when validating and autograding. The longest graded cell
# (training the MNIST MLP in 06_mnist) takes well under a minute on a 2-core machine.
c.Execute.timeout = int(os.environ.get("MICROGRAD_PLUS_CELL_TIMEOUT", "300"))
c.Execute.interrupt_on_timeout = True

# ---------------------------------------------------------------- grading workflow
import sys  # noqa: E402

_COURSE_CODE = str(Path(__file__).resolve().parent.parent)  # where the grader package lives
if _COURSE_CODE not in sys.path:
    sys.path.insert(0, _COURSE_CODE)

from grader.database import database_url  # noqa: E402
from grader.hardening import (  # noqa: E402
    DecideGrades,
    GuardTestHelpers,
    HideHiddenTests,
    RemoveGuardCells,
    SandboxedExecute,
)
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    GetGrades,
    IgnorePattern,
    LimitOutput,
)

# grader/gradebook.db, or the database of MICROGRAD_PLUS_DB_URL (make ... DB_URL=postgresql://...)
c.CourseDirectory.db_url = database_url(ROOT)

c.ZipCollectApp.downloaded_directory = "grader/downloaded"

# Autograde: nbgrader's defaults (OverwriteCells restores graded and locked cells from
# the gradebook before execution), except that the notebook runs in the bubblewrap
# sandbox (grader/sandbox.py) and the scores follow grader/verdicts.py.
c.Autograde.create_student = True
c.Autograde.autograde_preprocessors = [
    GuardTestHelpers,  # a guard cell before every graded cell: genuine numpy/gradcheck helpers
    SandboxedExecute,  # execute in the sandbox; 'not graded: <reason>' when it cannot
    RemoveGuardCells,  # take the guard cells out again
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    DecideGrades,  # the course's scoring rule and recorded checks, outside the kernel
    AssignLatePenalties,
    CheckCellMetadata,
]

# Feedback: hidden tests (and tracebacks quoting them) removed before the HTML is written.
c.GenerateFeedback.preprocessors = [HideHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]

# Zip collection of an LMS download (docs/INSTRUCTORS.md): files named
#   <student_id>_[anything_]<NN_topic>[-<n>].ipynb
# e.g. alice_01_value.ipynb, smithjohn_12345_678910_01_value-1.ipynb (Canvas style).
# The student id is the part before the first underscore.
c.ZipCollectApp.collector_plugin = "nbgrader.plugins.FileNameCollectorPlugin"
c.FileNameCollectorPlugin.named_regexp = (
    r".*/(?P<student_id>[A-Za-z0-9][A-Za-z0-9.\-]*)_(?:[^/]*_)?"
    r"(?P<file_id>\d\d_[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*?)(?:-\d+)?\.ipynb$"
)
