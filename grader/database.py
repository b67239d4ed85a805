"""Where the gradebook lives: one SQLite file by default, any SQLAlchemy database on request.

``MICROGRAD_PLUS_DB_URL`` (``make ... DB_URL=...``) names the database, e.g.
``postgresql://grader:secret@db.example.org/course`` so that several grading machines
(``SHARD=i/n``) write into one gradebook. Without it the gradebook is
``grader/gradebook.db`` (SQLite), opened with a long busy timeout so that parallel
graders (``JOBS=N``) wait for each other's short write transactions instead of failing
with "database is locked".

>>> database_url("/course", {})
'sqlite:////course/grader/gradebook.db?timeout=300'
>>> database_url("/course", {"MICROGRAD_PLUS_DB_URL": "postgresql://u:p@host/db"})
'postgresql+psycopg://u:p@host/db'
>>> describe("postgresql+psycopg://u:secret@host:5432/db")
'postgresql+psycopg://u:***@host:5432/db'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV = "MICROGRAD_PLUS_DB_URL"
SQLITE_TIMEOUT = 300  # seconds a writer waits for another one's lock


def database_url(root, environ=None) -> str:
    """The gradebook's SQLAlchemy URL (PostgreSQL URLs use the psycopg 3 driver)."""
    environ = os.environ if environ is None else environ
    url = environ.get(ENV, "").strip()
    if not url:
        return f"sqlite:///{Path(root) / 'grader' / 'gradebook.db'}?timeout={SQLITE_TIMEOUT}"
    return re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", url)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases)."""
    if not is_sqlite(url):
        return None
    return Path(url[len("sqlite:///") :].split("?", 1)[0])


def describe(url: str) -> str:
    """The URL with its password masked, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def prepare_for_parallel_writers(url: str) -> None:
    """Switch a SQLite gradebook to write-ahead logging: readers no longer block the writer,
    and the writers (one per grading process) take turns within the busy timeout."""
    path = sqlite_path(url)
    if path is None or not path.exists():
        return
    import sqlite3

    with sqlite3.connect(path, timeout=SQLITE_TIMEOUT) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
