"""Unpack an LMS download of one lab into ``grader/submitted/<learner>/<lab>/``.

``make collect ZIP=downloads.zip LAB=01_value``

Every notebook of the archive is matched to a learner by its name, as the LMS wrote it:

- Moodle: ``Full Name_123456_assignsubmission_file_<upload>`` (a folder per submission or
  flat files); the learner id is the name in lower case without accents, apostrophes or
  spaces (``Zoë O'Brien`` -> ``zoe-obrien``), the number is Moodle's participant id for
  this assignment;
- Canvas: ``<login>[_LATE]_<user id>_<attachment id>_<upload>``; the learner id is the
  login, the user id is kept for the grade export;
- anything else: ``<learner id>_[anything_]<lab>.ipynb`` (``alice_01_value.ipynb``).

The upload must be the lab's notebook; ``-1``, ``-Copy1``, `` (1)`` suffixes are fine. A file
that learners hand in with the notebook (``grader.release.HANDED_IN``: lab 10's ``cnn_weights.npz``),
named the same way (``alice_cnn_weights.npz``, ``Full Name_123456_assignsubmission_file_/cnn_weights.npz``),
goes next to that learner's notebook; one without a notebook of the learner in the archive is skipped.
The submission time is the time stamp in the file name when there is one
(``2026-03-01-17-05-59``), otherwise the archive entry's time (taken as UTC); it goes to
``timestamp.txt`` next to the notebook, so ``make autograde ONLY_NEW=1`` regrades exactly
the resubmissions. Two files of one learner: the latest is kept (time, then suffix number,
then Canvas attachment id) and both are named. A submission already collected is replaced
only by a newer one. Learners and their LMS ids are recorded in ``grader/learners.csv``
(used by ``make grades``). Every file that is not collected is listed with the reason,
and the exit status is then 1; no learner folder is left without a notebook.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import sys
import unicodedata
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from grader.course import GRADER, SUBMITTED

LEARNERS = GRADER / "learners.csv"
LEARNER_FIELDS = ["student", "name", "lms", "lms_user_id", "email"]

MOODLE = re.compile(r"(?:^|/)(?P<name>[^/_]+)_(?P<pid>\d+)_assignsubmission_file_/?(?P<upload>[^/]+)$")
CANVAS = re.compile(
    r"^(?P<login>[A-Za-z0-9.\-]+?)(?:_(?P<late>late))?_(?P<uid>\d+)_(?P<aid>\d+)_(?P<upload>.+)$", re.IGNORECASE
)
PLAIN = re.compile(r"^(?P<sid>[A-Za-z0-9][A-Za-z0-9.\-]*)_(?P<upload>.+)$")
SUFFIX = re.compile(r"(?:\s*\((?P<paren>\d+)\)|-Copy(?P<copy>\d*)|\s+copy|-(?P<dash>\d+))$", re.IGNORECASE)
STAMP = re.compile(r"(?P<y>20\d\d)-(?P<mo>\d\d)-(?P<d>\d\d)[-_ T](?P<h>\d\d)[-:](?P<mi>\d\d)[-:](?P<s>\d\d)")
IGNORED = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|\.ipynb_checkpoints/)")


def learner_id(name: str) -> str:
    """A stable id from a person's name: ASCII, lower case, words joined by ``-``.

    >>> learner_id("Zoë O'Brien"), learner_id("  José  María de la Cruz "), learner_id("Łukasz Żak")
    ('zoe-obrien', 'jose-maria-de-la-cruz', 'lukasz-zak')
    """
    name = name.translate(
        {ord(k): v for k, v in {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "đ": "d", "Đ": "D"}.items()}
    )
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"['’`´]", "", ascii_name.lower())
    return re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")


def strip_suffixes(stem: str) -> tuple[str, int]:
    """``01_value-Copy1 (2)`` -> (``01_value``, 2): the name without copy/resubmission
    suffixes, and the last suffix's number (0 without one).

    >>> strip_suffixes("01_value"), strip_suffixes("01_value (1)"), strip_suffixes("01_value-Copy1")
    (('01_value', 0), ('01_value', 1), ('01_value', 1))
    >>> strip_suffixes("01_value-2")
    ('01_value', 2)
    """
    number = None
    while True:
        m = SUFFIX.search(stem)
        if not m or m.start() == 0:
            return stem, number or 0
        found = m.group("paren") or m.group("dash") or m.group("copy") or "1"
        number = int(found) if number is None else number
        stem = stem[: m.start()]


@dataclass
class Entry:
    path: str  # name in the archive
    student: str
    name: str  # the person's name as the LMS wrote it ('' if unknown)
    lms: str  # moodle, canvas or plain
    lms_id: str  # Canvas user id / Moodle participant id ('' for plain names)
    time: datetime
    suffix: int
    attachment: int
    late: bool = False


def parse(path: str, lab: str, zip_time: datetime) -> Entry | str:
    """The archive entry as a submission of ``lab``, or the reason it is not one."""
    base = path.rsplit("/", 1)[-1]
    moodle = MOODLE.search(path)
    candidates = [("moodle", moodle)] if moodle else [("canvas", CANVAS.match(base)), ("plain", PLAIN.match(base))]
    candidates = [(kind, m) for kind, m in candidates if m]
    reason = None
    for kind, match in candidates:  # the first reading whose upload is this lab's notebook
        upload = match.group("upload") if match else base
        if not upload.lower().endswith(".ipynb"):
            reason = reason or "not a notebook (.ipynb)"
            continue
        stem, suffix = strip_suffixes(upload[: -len(".ipynb")])
        if not stem.endswith(lab):
            other = re.search(r"\d\d_[A-Za-z0-9]+$", stem)
            reason = reason or (
                f"a notebook of {other.group(0)}, not of {lab}"
                if other and other.group(0) != lab
                else f"not named after {lab}.ipynb"
            )
            continue
        if kind is not None:
            break
    else:
        whole = base[: -len(".ipynb")] if base.lower().endswith(".ipynb") else ""
        if whole and strip_suffixes(whole)[0].endswith(lab):
            return (
                "the learner cannot be told from the name (expected Moodle's 'Full Name_123_assignsubmission_file_', "
                f"Canvas's 'login_123_456_' or '<learner id>_{lab}.ipynb')"
            )
        if not base.lower().endswith(".ipynb"):
            return "not a notebook (.ipynb)"
        return reason or f"not named after {lab}.ipynb"
    moodle = match if kind == "moodle" else None
    canvas = match if kind == "canvas" else None
    plain = match if kind == "plain" else None
    stamp = STAMP.search(base)
    time = (
        datetime(*[int(stamp.group(k)) for k in ("y", "mo", "d", "h", "mi", "s")], tzinfo=timezone.utc)  # type: ignore[misc,arg-type]
        if stamp
        else zip_time
    )
    if moodle:
        name = " ".join(moodle.group("name").split())
        return Entry(path, learner_id(name), name, "moodle", moodle.group("pid"), time, suffix, 0)
    if canvas:
        return Entry(
            path,
            canvas.group("login").lower(),
            "",
            "canvas",
            canvas.group("uid"),
            time,
            suffix,
            int(canvas.group("aid")),
            late=bool(canvas.group("late")),
        )
    assert plain is not None
    return Entry(path, plain.group("sid"), "", "plain", "", time, suffix, 0)


def parse_handed_in(path: str, lab: str, zip_time: datetime) -> tuple[str, Entry] | None:
    """A file learners hand in with the notebook (``grader.release.HANDED_IN``), named as the LMS names the
    notebook: (the file's name, its learner), or None when ``path`` is no such file.

    >>> from datetime import datetime, timezone
    >>> name, entry = parse_handed_in("smithjohn_1001_5002_cnn_weights-1.npz", "10_conv", datetime.now(timezone.utc))
    >>> name, entry.student, entry.lms, entry.suffix
    ('cnn_weights.npz', 'smithjohn', 'canvas', 1)
    >>> parse_handed_in("alice_10_conv.ipynb", "10_conv", datetime.now(timezone.utc)) is None
    True
    """
    from grader.release import HANDED_IN

    for name in HANDED_IN:
        stem, ext = name.rsplit(".", 1)
        found = re.search(rf"(?:^|[/_]){re.escape(stem)}(?P<suffix>[^/]*)\.{re.escape(ext)}$", path, re.IGNORECASE)
        if found:  # read the name as the LMS's name of the lab's notebook
            start = found.start() + (found.group(0)[0] in "/_")
            entry = parse(path[:start] + lab + found.group("suffix") + ".ipynb", lab, zip_time)
            return None if isinstance(entry, str) else (name, replace(entry, path=path))
    return None


def _submission_order(item: tuple[Entry, bytes]) -> tuple:
    """Sort key of one learner's uploads (``(entry, data)``): the latest, by time then ``-N`` suffix, last."""
    entry = item[0]
    return (entry.time, entry.suffix, entry.attachment, entry.path)


def read_learners(path: Path = LEARNERS) -> dict[str, dict]:
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["student"]: {k: row.get(k, "") or "" for k in LEARNER_FIELDS} for row in csv.DictReader(f)}


def write_learners(table: dict[str, dict], path: Path = LEARNERS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=LEARNER_FIELDS)
        writer.writeheader()
        for student in sorted(table):
            writer.writerow(table[student])


def stamp_text(time: datetime) -> str:
    return time.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def remove_empty_folders(lab: str) -> None:
    for folder in SUBMITTED.glob(f"*/{lab}"):
        if folder.is_dir() and not any(folder.glob("*.ipynb")):
            shutil.rmtree(folder)
            print(f"removed {folder}: it held no notebook")
    for learner in SUBMITTED.glob("*"):
        if learner.is_dir() and not any(learner.iterdir()):
            learner.rmdir()


def collect(archive: Path, lab: str) -> int:
    import nbformat

    if not zipfile.is_zipfile(archive):
        print(f"error: {archive} is not a zip archive")
        return 2
    downloaded = GRADER / "downloaded" / lab / "archive"
    downloaded.mkdir(parents=True, exist_ok=True)
    if archive.resolve() != (downloaded / archive.name).resolve():
        shutil.copy2(archive, downloaded / archive.name)
    learners = read_learners()
    skipped: list[tuple[str, str]] = []
    entries: dict[str, list[tuple[Entry, bytes]]] = {}
    handed_in: dict[str, dict[str, list[tuple[Entry, bytes]]]] = {}  # learner -> file name -> its copies
    moodle_ids: dict[str, str] = {}  # learner id -> participant id seen in this archive
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir() or IGNORED.search(info.filename):
                continue
            zip_time = datetime(*info.date_time, tzinfo=timezone.utc)
            extra = parse_handed_in(info.filename, lab, zip_time)
            if extra:
                handed_in.setdefault(extra[1].student, {}).setdefault(extra[0], []).append((extra[1], zf.read(info)))
                continue
            entry = parse(info.filename, lab, zip_time)
            if isinstance(entry, str):
                skipped.append((info.filename, entry))
                continue
            data = zf.read(info)
            try:
                nbformat.reads(data.decode("utf-8"), as_version=4)
            except Exception as error:
                skipped.append((info.filename, f"not a readable notebook ({type(error).__name__})"))
                continue
            if entry.lms == "moodle":  # two people with the same name: the participant id tells them apart
                seen = moodle_ids.setdefault(entry.student, entry.lms_id)
                if seen != entry.lms_id:
                    entry.student = f"{entry.student}-{entry.lms_id}"
                    print(
                        f"warning: two learners named {entry.name!r}: {info.filename} is collected as {entry.student}"
                    )
            known = learners.get(entry.student)
            if entry.lms == "canvas" and known and known["lms_user_id"] not in ("", entry.lms_id):
                entry.student = f"{entry.student}-{entry.lms_id}"
                print(
                    f"warning: Canvas login {known['student']} belongs to user {known['lms_user_id']}; "
                    f"{info.filename} (user {entry.lms_id}) is collected as {entry.student}"
                )
            entries.setdefault(entry.student, []).append((entry, data))

    collected, unchanged, older, late = [], [], [], []

    def hand_in(student: str, folder: Path) -> None:  # the latest copy of each handed-in file, next to the notebook
        for name, copies in handed_in.pop(student, {}).items():
            copies.sort(key=_submission_order)
            if not (folder / name).is_file() or (folder / name).read_bytes() != copies[-1][1]:
                (folder / name).write_bytes(copies[-1][1])
                print(f"{student}: {name} from {copies[-1][0].path}")

    participants = {}
    for student, files in sorted(entries.items()):
        files.sort(key=_submission_order)
        entry, data = files[-1]
        if len(files) > 1:
            print(
                f"{student}: {len(files)} files in the archive; keeping the latest, {entry.path} "
                f"({stamp_text(entry.time)}), not {', '.join(e.path for e, _ in files[:-1])}"
            )
        folder = SUBMITTED / student / lab
        target = folder / f"{lab}.ipynb"
        previous = (folder / "timestamp.txt").read_text().strip() if (folder / "timestamp.txt").exists() else None
        if target.exists() and previous:
            from nbgrader.utils import parse_utc

            old_time = parse_utc(previous).replace(tzinfo=timezone.utc)
            if old_time > entry.time:
                older.append(student)
                print(
                    f"{student}: {entry.path} ({stamp_text(entry.time)}) is older than the submission "
                    f"already collected ({previous}); keeping that one"
                )
                continue
            if old_time == entry.time and target.read_bytes() == data:
                unchanged.append(student)
                hand_in(student, folder)
                continue
        folder.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        hand_in(student, folder)
        (folder / "timestamp.txt").write_text(stamp_text(entry.time) + "\n")
        collected.append(student + (" (resubmission)" if previous else ""))
        late += [student] if entry.late else []
        record = learners.setdefault(student, dict.fromkeys(LEARNER_FIELDS, "") | {"student": student})
        record["name"] = entry.name or record["name"]
        record["lms"] = entry.lms
        if entry.lms == "canvas":
            record["lms_user_id"] = entry.lms_id
        if entry.lms == "moodle":
            participants[student] = entry.lms_id
    if participants:  # Moodle's participant ids are per assignment: kept per lab for its grading worksheet
        path = GRADER / "downloaded" / lab / "participants.csv"
        table = {}
        if path.exists():
            with path.open(newline="", encoding="utf-8") as f:
                table = {row["student"]: row["participant_id"] for row in csv.DictReader(f)}
        table.update(participants)
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["student", "participant_id"])
            writer.writerows(sorted(table.items()))
    for student, extras in sorted(handed_in.items()):  # no notebook of theirs collected from this archive
        for name, copies in extras.items():
            skipped += [(e.path, f"a {name} without a newer notebook of {lab} from {student}") for e, _ in copies]
    write_learners(learners)
    remove_empty_folders(lab)
    print(
        f"collected {len(collected)} submission(s) of {lab} into {SUBMITTED}/<learner>/{lab}/"
        + (f": {', '.join(collected)}" if collected else "")
    )
    if unchanged:
        print(f"unchanged (already collected): {', '.join(unchanged)}")
    if late:
        print(f"marked late by the LMS: {', '.join(late)}")
    for name, reason in skipped:
        print(f"SKIPPED {name}: {reason}")
    if skipped:
        print(f"{len(skipped)} file(s) of the archive were not collected (reasons above); everyone else was")
    if not collected and not unchanged and not older:
        print(f"error: no submission of {lab} in {archive}")
        return 1
    return 1 if skipped else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", type=Path, required=True, help="the LMS download (a .zip of notebooks)")
    parser.add_argument("--lab", required=True, help="the lab these submissions are for, e.g. 01_value")
    args = parser.parse_args(argv)
    return collect(args.zip.resolve(), args.lab)


if __name__ == "__main__":
    sys.exit(main())
