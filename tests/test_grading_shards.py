"""Three shards graded at once and merged give what one run over the whole class gives (a few minutes).

A small class (the reference, the untouched release, two mistakes from the mutation catalogue) is graded
twice with the real grader: once whole, and once as `--shard 1/3`, `2/3` and `3/3` in three processes
running at the same time, then joined with `python -m tools.grading.grade merge`. The student ids are chosen
so that each shard grades at least one student. (How students are split, kept and merged, with a fake
grader and many students: tests/test_grading_scale.py.)
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from resnets_utils import KIT_DIR
from tests.test_grading_sandbox import needs_bwrap
from tools.grading.grade import in_shard
from tools.grading.mutations import MUTATIONS, fill_in, reference_solutions
from tools.grading.nbgrader_course import build_course

pytestmark = [pytest.mark.slow, needs_bwrap]
BLOCKS, RESNET = "02_residual_blocks", "03_resnet50"
SHARDS = 3
GRADE_OPTIONS = ["--timeout", "60", "--memory", "3"]


def mutation(name: str):
    return next(m for m in MUTATIONS if m.name == name)


def class_of_submissions() -> dict[str, dict[str, dict[str, str]]]:
    """student -> notebook -> solutions; the ids fall in shards 2, 2, 1 and 3 of 3."""
    reference = reference_solutions()
    shortcut = mutation("shortcut never added (identity_block)")
    pool = mutation("max pool instead of average pool")
    return {
        "reference": {BLOCKS: reference, RESNET: reference},
        "untouched_release": {BLOCKS: {}, RESNET: {}},
        "mistake_shortcut": {BLOCKS: {**reference, shortcut.grade_id: shortcut.source()}, RESNET: reference},
        "mistake_max_pool": {BLOCKS: reference, RESNET: {**reference, pool.grade_id: pool.source()}},
    }


def grade_command(submissions: Path, out: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "tools.grading.grade", str(submissions), "--out", str(out), *GRADE_OPTIONS, *options]


def finished(process: subprocess.Popen) -> str:
    """Wait for a grading process; its output, after checking it succeeded."""
    output, _ = process.communicate()
    assert process.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Grade the class whole and as three shards at once, merge the shards; the output folders by name."""
    work = tmp_path_factory.mktemp("shards")
    release = build_course(work / "course")
    submissions = work / "submissions"
    for student, notebooks in class_of_submissions().items():
        (submissions / student).mkdir(parents=True)
        for notebook, solutions in notebooks.items():
            nbformat.write(fill_in(release / f"{notebook}.ipynb", solutions), submissions / student / f"{notebook}.ipynb")
    shards = [work / f"shard-{index}" for index in range(1, SHARDS + 1)]
    started = [subprocess.Popen(grade_command(submissions, out, "--shard", f"{index}/{SHARDS}", "--workers", "1"),
                                cwd=KIT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for index, out in enumerate(shards, start=1)]
    for process in started:
        finished(process)
    single = subprocess.Popen(grade_command(submissions, work / "single", "--workers", "2"),
                              cwd=KIT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finished(single)
    merge = subprocess.run([sys.executable, "-m", "tools.grading.grade", "merge", *map(str, shards), "--out", str(work / "merged")],
                           cwd=KIT_DIR, capture_output=True, text=True)
    assert merge.returncode == 0, merge.stdout + merge.stderr
    return {"single": work / "single", "merged": work / "merged", **{f"shard {index}": out for index, out in enumerate(shards, start=1)}}


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "grades.csv", newline="") as file:
        return list(csv.DictReader(file))


def totals(out: Path) -> dict[str, float]:
    points: dict[str, float] = {}
    for row in rows(out):
        points[row["student_id"]] = points.get(row["student_id"], 0.0) + float(row["score"])
    return points


def test_each_shard_grades_only_its_students_and_none_is_empty(runs):
    for index in range(1, SHARDS + 1):
        students = {row["student_id"] for row in rows(runs[f"shard {index}"])}
        assert students, f"shard {index}/{SHARDS} graded nobody: the class no longer covers every shard"
        assert students == {student for student in class_of_submissions() if in_shard(student, (index, SHARDS))}


def test_the_single_run_grades_the_class_as_expected(runs):
    """What the comparison compares: real grades, not every student failing the same way."""
    points = totals(runs["single"])
    assert points["reference"] == 10 and points["untouched_release"] == 0
    assert points["mistake_shortcut"] == 3  # 10 less the identity block's 3 and ResNet50's 4: notebook 3 uses the student's blocks
    assert points["mistake_max_pool"] == 6
    assert not any(row["reason"].startswith("GRADER PROBLEM") for row in rows(runs["single"]))


def test_merged_shards_equal_the_single_run_row_for_row(runs):
    assert rows(runs["merged"]) == rows(runs["single"])
    assert (runs["merged"] / "grades.csv").read_bytes() == (runs["single"] / "grades.csv").read_bytes()


def feedback_pages(out: Path) -> dict[str, str]:
    """relative path -> text of each feedback page, with the names of the run's temporary folder and of its
    workers' zygote folders left out (tracebacks through resnets_utils show them, and every run draws others)."""
    run_folder, zygote_folder = re.compile(r"resnets-grading-\w+"), re.compile(r"zygote-\w+")
    return {str(page.relative_to(out / "feedback")):
            zygote_folder.sub("zygote-<worker>", run_folder.sub("resnets-grading-<run>", page.read_text()))
            for page in sorted((out / "feedback").rglob("*")) if page.is_file()}


def test_merged_feedback_matches_the_single_run(runs):
    merged, single = feedback_pages(runs["merged"]), feedback_pages(runs["single"])
    assert sorted(merged) == sorted(single) == sorted(f"{student}/{notebook}.html" for student in class_of_submissions()
                                                      for notebook in (BLOCKS, RESNET))
    different = [page for page in single if merged[page] != single[page]]
    assert not different, f"feedback pages that differ between the merged shards and the single run: {different}"
