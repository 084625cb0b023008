"""Student code stays in its sandbox wherever the kit lives (about 2 minutes: `make test-all`).

A small hostile class (students who go for the source notebooks, the gradebook, the kit's
.git, another student's work or the network, plus the reference as a control) is graded from
a clone of the kit under the temporary folder, on a path with spaces and with its own .venv
there too, and from a clone under home with TMPDIR elsewhere and the .venv outside the kit.
Each attacker earns points only if its attack works (with --no-sandbox, every attack does).
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import nbformat
import pytest

from resnets_utils import KIT_DIR
from tests.test_grading_sandbox import needs_bwrap
from tools.grading.mutations import fill_in, reference_solutions
from tools.grading.nbgrader_course import build_course

pytestmark = [pytest.mark.slow, needs_bwrap]
BLOCKS = "02_residual_blocks"
LAYOUTS = ("clone under the temporary folder, with its .venv", "clone under home, TMPDIR elsewhere")
ATTACKS = {  # attacker -> the error its attack shows once it is blocked
    "steals_solution": "NotebookError",
    "reads_gradebook": "AssertionError",
    "reads_git": "FileNotFoundError",
    "reads_other_student": "IndexError",
    "uses_network": "ConnectionRefusedError",
}


def copy_kit(target: Path) -> Path:
    """Copy the kit's files (tracked, and new but not ignored) to `target`, with a git repository of its own to hide."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=KIT_DIR, capture_output=True, text=True, check=True).stdout
    for name in filter(None, listed.split("\0")):
        if (KIT_DIR / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(KIT_DIR / name, target / name)
    subprocess.run(["git", "init", "--quiet", str(target)], check=True)
    return target


def venv_inside(kit: Path) -> Path:
    """A .venv in `kit` that uses this one's packages (no TensorFlow to install), so that sys.prefix lies in `kit`."""
    venv = kit / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    (Path(site_packages) / "kit-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for command in ("nbgrader", "alembic"):  # what the grader runs from beside its Python
        script = venv / "bin" / command
        script.write_text(f'#!/bin/sh\nexec "{python}" -m {command} "$@"\n')
        script.chmod(0o755)
    return python


def hostile_class(kit: Path, temporary: Path, submissions: Path, port: int) -> dict[str, dict[str, str]]:
    """student -> solutions of notebook 2: each attacker's identity_block works only if its attack does."""
    reference = reference_solutions()

    def after(attack: str) -> dict[str, str]:
        return {**reference, "identity_block": attack + "\n" + reference["identity_block"]}

    def taken_from(notebook: str) -> dict[str, str]:
        return {**reference, "identity_block": f"import glob, resnets_utils\nidentity_block = resnets_utils.functions_from({notebook}, 'identity_block')"}

    others = (f"(glob.glob({str(submissions)!r} + '/reference/*.ipynb')"
              f" + glob.glob({str(temporary)!r} + '/resnets-grading-*/reference/**/*.ipynb', recursive=True))[0]")
    return {
        "reference": reference,
        "steals_solution": taken_from(repr(str(kit / "notebooks" / f"{BLOCKS}.ipynb"))),
        "reads_gradebook": after(f"import glob\nassert glob.glob({str(temporary)!r} + '/resnets-grading-*/**/gradebook.db', recursive=True)"),
        "reads_git": after(f"assert open({str(kit / '.git' / 'HEAD')!r}).read()"),
        "reads_other_student": taken_from(others),
        "uses_network": after(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).close()"),
    }


def read_grades(out: Path) -> dict[str, dict[str, dict]]:
    """student -> grade_id -> row of grades.csv."""
    table: dict[str, dict[str, dict]] = {}
    with open(out / "grades.csv") as file:
        for row in csv.DictReader(file):
            table.setdefault(row["student_id"], {})[row["grade_id"]] = row
    return table


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return build_course(tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="module", params=LAYOUTS)
def layout_grades(request, release, tmp_path_factory):
    """Grade the hostile class from a kit placed as the layout says; return the layout and student -> grade_id -> row."""
    environment = dict(os.environ)
    if request.param == LAYOUTS[0]:
        base = tmp_path_factory.mktemp("kit under tmp")
        kit = copy_kit(base / "resnets kit")
        python = venv_inside(kit)
        temporary = Path(tempfile.gettempdir())
        prefix = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True).stdout.strip()
        assert Path(prefix).is_relative_to(temporary), prefix
    else:
        base = Path(tempfile.mkdtemp(prefix="resnets kit test ", dir=Path.home()))
        request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
        kit = copy_kit(base / "resnets kit")
        python = Path(sys.executable)
        temporary = base / "elsewhere"
        temporary.mkdir()
        environment["TMPDIR"] = str(temporary)
    submissions, out = base / "submissions", base / "grades"
    with socket.socket() as listener:  # a server on the grader's loopback, which the kernel's loopback must not reach
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        for student, solutions in hostile_class(kit, temporary, submissions, listener.getsockname()[1]).items():
            (submissions / student).mkdir(parents=True)
            nbformat.write(fill_in(release / f"{BLOCKS}.ipynb", solutions), submissions / student / f"{BLOCKS}.ipynb")
        result = subprocess.run([python, "-m", "tools.grading.grade", str(submissions), "--out", str(out), "--timeout", "120"],
                                cwd=kit, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bubblewrap sandbox" in result.stdout
    return request.param, read_grades(out)


@pytest.mark.parametrize("attacker", ATTACKS)
def test_an_attack_earns_nothing_wherever_the_kit_lives(layout_grades, attacker):
    layout, grades = layout_grades
    identity, convolutional = grades[attacker]["identity_block_hidden"], grades[attacker]["convolutional_block_hidden"]
    assert float(identity["score"]) == 0, f"{layout}: {identity}"
    assert identity["status"] == "failed" and ATTACKS[attacker] in identity["reason"], f"{layout}: {identity}"
    assert float(convolutional["score"]) == 3, f"{layout}: the kernel ran normally otherwise: {convolutional}"


def test_the_reference_scores_full_marks_in_the_sandbox_wherever_the_kit_lives(layout_grades):
    layout, grades = layout_grades
    rows = [row for row in grades["reference"].values() if row["notebook"] == BLOCKS]
    assert sum(float(row["score"]) for row in rows) == 6, f"{layout}: {[row['reason'] for row in rows]}"
    assert {row["status"] for row in rows} == {"passed"}
