"""nbgrader configuration of the course (loaded by the two-line nbgrader_config.py at the root).

solutions/NN_topic/NN_topic.ipynb  -- nbgrader's *source*  (the instructor notebooks)
labs/NN_topic/NN_topic.ipynb       -- nbgrader's *release* (what learners get)
grader/submitted, grader/autograded, grader/feedback, grader/gradebook.db  -- git-ignored state
"""
import os
from pathlib import Path

c = get_config()  # noqa: F821

ROOT = Path(os.environ.get("MICROGRAD_PLUS_COURSE_ROOT", Path(__file__).resolve().parent.parent))

c.CourseDirectory.course_id = "micrograd-plus"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "labs"
c.CourseDirectory.submitted_directory = "grader/submitted"
c.CourseDirectory.autograded_directory = "grader/autograded"
c.CourseDirectory.feedback_directory = "grader/feedback"
c.CourseDirectory.db_url = f"sqlite:///{ROOT / 'grader' / 'gradebook.db'}"
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
