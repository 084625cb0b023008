"""After grading: merge the shards of a class; export grades for an LMS or for Gradescope.

`python -m tools.grading.grade merge OUT1 OUT2 ... [--out MERGED] [--force]` joins the output folders of
`--shard 1/N` ... `N/N` into one grades.csv, row for row what one machine grading the whole class
writes, and one feedback/ tree.

`python -m tools.grading.grade export [GRADES] --format lms gradescope` reads GRADES/grades.csv (one run's
or a merged one) and writes GRADES/lms_gradebook.csv and GRADES/gradescope/<student_id>/results.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

from tools.grading.grade import (COLUMNS, GRADES_DIR, SHARD_FILE, UNSANDBOXED, GradingError, Row, in_csv_order, shard_argument,
                                 write_grades)

LMS_FILE = "lms_gradebook.csv"
# Canvas reads a gradebook CSV only when its first columns are these (the ones its own export starts with);
# it finds the student by "ID" (Canvas's number), then "SIS User ID", then "SIS Login ID", then the name.
LMS_STUDENT_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
LMS_ID_COLUMNS = ("SIS Login ID", "SIS User ID", "ID")
LMS_TOTAL_COLUMN = "Final Points"  # a total Canvas's import skips as read-only, rather than making it an assignment


class UnusableGrades(GradingError):
    """A grades folder cannot be merged or exported; the message names it and says why."""


def read_grades(folder: Path) -> list[Row]:
    """The rows of `folder`/grades.csv, refusing a folder without one or a CSV not written by `make grade`."""
    path = folder / "grades.csv"
    if not path.is_file():
        raise UnusableGrades(f"{folder} has no grades.csv (is it the --out folder of a grading run that finished?)")
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise UnusableGrades(f"{path} has the columns {','.join(reader.fieldnames or [])!r}, "
                                 f"not the ones `make grade` writes: {','.join(COLUMNS)}")
        try:
            return [Row(**{**row, "score": float(row["score"]), "max_score": float(row["max_score"])}) for row in reader]
        except ValueError as error:
            raise UnusableGrades(f"{path} has a score that is not a number ({error})") from None


def check_shards(folders: list[Path]) -> None:
    """Refuse shards that are not all N shards of one split (`--shard i/N` leaves OUT/shard.txt saying i/N)."""
    shards = {folder: shard_argument((folder / SHARD_FILE).read_text()) if (folder / SHARD_FILE).is_file() else None
              for folder in folders}
    if not any(shards.values()):
        return  # folders graded without --shard: the duplicate check is all there is
    counts = {shard[1] for shard in shards.values() if shard}
    if None in shards.values() or len(counts) > 1:
        listing = ", ".join(f"{folder} ({f'{shard[0]}/{shard[1]}' if shard else 'not a shard'})" for folder, shard in shards.items())
        raise UnusableGrades(f"these folders are not shards of one split: {listing}")
    count = counts.pop()
    given = sorted(shard[0] for shard in shards.values())
    missing = sorted(set(range(1, count + 1)) - set(given))
    if missing or len(given) != count:
        problem = f"shard {', '.join(f'{i}/{count}' for i in missing)} is missing" if missing else "a shard is given twice"
        raise UnusableGrades(f"{problem} (given: {', '.join(map(str, folders))}); a merge needs all {count} shards once each")


def merge(folders: list[Path], out: Path, force: bool = False) -> Path:
    """Merge the grades.csv and feedback/ of `folders` into `out`; return the merged grades.csv.

    Everything is checked before anything is written: each folder has a grades.csv with the right
    columns, no student is in two folders, and shards are all there. An existing `out/grades.csv` is
    replaced only with `force`, because that file is what instructors upload and scripts read: replacing
    it unasked could lose grades, and writing a second file beside it would leave the old one looking current.
    """
    if (out / "grades.csv").exists() and not force:
        raise UnusableGrades(f"{out / 'grades.csv'} exists already; add --force to replace it, or choose another --out")
    if out.resolve() in {folder.resolve() for folder in folders}:
        raise UnusableGrades(f"{out} is one of the folders to merge; merge into a folder of its own (--out)")
    check_shards(folders)
    rows, owners = [], {}
    for folder in folders:
        folder_rows = read_grades(folder)
        for student in dict.fromkeys(row.student_id for row in folder_rows):
            if student in owners:
                raise UnusableGrades(f"student {student} is in both {owners[student]} and {folder}; "
                                     "were they graded with different --shard counts, or is a folder given twice?")
            owners[student] = folder
        rows += folder_rows
    for student, folder in owners.items():
        pages, target = folder / "feedback" / student, out / "feedback" / student
        shutil.rmtree(target, ignore_errors=True)
        if pages.is_dir():
            shutil.copytree(pages, target)
    (out / SHARD_FILE).unlink(missing_ok=True)
    return write_grades(in_csv_order(rows), out)


def totals(rows: list[Row]) -> dict[str, dict[str, float]]:
    """student -> notebook -> points, in the order of grades.csv."""
    points: dict[str, dict[str, float]] = {}
    for row in rows:
        student = points.setdefault(row.student_id, {})
        student[row.notebook] = student.get(row.notebook, 0.0) + row.score
    return points


def write_lms_gradebook(rows: list[Row], path: Path, id_column: str = "SIS Login ID") -> Path:
    """One row per student, one column of points per notebook and their total, for Canvas and Moodle.

    Columns: Student, ID, SIS User ID, SIS Login ID, Section (Canvas accepts a file only when it begins
    with these; the student id goes in "Student" and in `id_column`, the others stay empty), one
    column per notebook named after it (Canvas fills the assignment of that name, or creates it), and
    "Final Points", the total, which Canvas's import skips as read-only. Moodle's CSV import takes any
    columns: map the id column to the user field it holds (username, email or ID number), each
    notebook column to its grade item, and leave the others ignored. There is no "Points Possible"
    row, which Canvas would read but Moodle would take for a student it cannot find; give each
    assignment its points in the LMS.
    """
    points = totals(rows)
    notebooks = list(dict.fromkeys(row.notebook for row in in_csv_order(rows)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*LMS_STUDENT_COLUMNS, *notebooks, LMS_TOTAL_COLUMN])
        for student, by_notebook in points.items():
            who = {column: student if column in ("Student", id_column) else "" for column in LMS_STUDENT_COLUMNS}
            scores = [by_notebook.get(notebook, 0.0) for notebook in notebooks]
            writer.writerow([*who.values(), *(f"{score:g}" for score in scores), f"{sum(scores):g}"])
    return path


def for_students(reason: str) -> str:
    """A reason from grades.csv as students may read it: without the note --no-sandbox grading adds, which tells
    them where the hidden tests could be read (grades.csv keeps it, for the instructor)."""
    return reason.removesuffix(UNSANDBOXED).removesuffix("; ")


def gradescope_results(rows: list[Row]) -> dict:
    """One student's Gradescope autograder results.json: the score, and one test per graded cell with its
    points and the reason from grades.csv, which holds the tests' error messages and never their code."""
    score, possible = sum(row.score for row in rows), sum(row.max_score for row in rows)
    return {
        "score": score,
        "output": f"{score:g} / {possible:g} points. Each test below says what it checked when it failed.",
        "tests": [
            {"name": f"{row.notebook}: {row.grade_id}", "score": row.score, "max_score": row.max_score,
             "status": "passed" if row.status == "passed" else "failed", "output": for_students(row.reason)}
            for row in rows
        ],
    }


def write_gradescope(rows: list[Row], folder: Path) -> list[Path]:
    """`folder/<student_id>/results.json` for each student, replacing what an earlier export left there."""
    shutil.rmtree(folder, ignore_errors=True)
    by_student: dict[str, list[Row]] = {}
    for row in in_csv_order(rows):
        by_student.setdefault(row.student_id, []).append(row)
    paths = []
    for student, student_rows in by_student.items():
        path = folder / student / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(gradescope_results(student_rows), indent=1) + "\n")
        paths.append(path)
    return paths


def argument_parser() -> argparse.ArgumentParser:
    """The command lines of `python -m tools.grading.grade merge ...` and `python -m tools.grading.grade export ...`."""
    parser = argparse.ArgumentParser(prog="python -m tools.grading.grade", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    merging = commands.add_parser("merge", help="join shard outputs into one grades.csv and feedback/")
    merging.add_argument("folders", type=Path, nargs="+", help="the --out folders of the shards")
    merging.add_argument("--out", type=Path, default=GRADES_DIR, help="where the merged grades.csv and feedback/ go (default grades/)")
    merging.add_argument("--force", action="store_true", help="replace an existing OUT/grades.csv")
    exporting = commands.add_parser("export", help="write grades.csv for an LMS (Canvas, Moodle) or Gradescope")
    exporting.add_argument("grades", type=Path, nargs="?", default=GRADES_DIR, help="a folder holding grades.csv (default grades/)")
    exporting.add_argument("--format", nargs="+", required=True, choices=("lms", "gradescope"),
                           help=f"lms: {LMS_FILE}, one row per student; gradescope: gradescope/<student_id>/results.json")
    exporting.add_argument("--id-column", choices=LMS_ID_COLUMNS, default="SIS Login ID",
                           help="the LMS column that holds the student ids (the submission folder names)")
    return parser


def main(argv: list[str]) -> None:
    """`merge ...` or `export ...` (what `python -m tools.grading.grade merge|export` runs); exit code 2 on a refusal."""
    args = argument_parser().parse_args(argv)
    try:
        if args.command == "merge":
            path = merge(args.folders, args.out, args.force)
            print(f"Merged {len(args.folders)} folders into {path} and {args.out / 'feedback'}.")
            return
        rows = read_grades(args.grades)
        if "lms" in args.format:
            print(f"Wrote {write_lms_gradebook(rows, args.grades / LMS_FILE, args.id_column)}.")
        if "gradescope" in args.format:
            paths = write_gradescope(rows, args.grades / "gradescope")
            print(f"Wrote {len(paths)} results.json files in {args.grades / 'gradescope'}.")
    except UnusableGrades as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(2)
