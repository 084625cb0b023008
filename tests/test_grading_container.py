"""--container-sandbox: the container is the sandbox, and the grader refuses a container that is not one.

The grader refuses (exit code 2, how to fix) when it is not root or when the container has a
network; it closes the hidden things to the kernel users and gives the permissions back; a kernel
user sees nothing hidden or refuses to start (GRADER SANDBOX FAILED); every process of a kernel
user is ended. One slow test grades a class of two (the reference, the untouched release) in
this mode, in a network namespace that has only loopback (bubblewrap's), from a copy of the kit.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from resnets_utils import KIT_DIR
from tests.test_grading_layouts import copy_kit, venv_inside
from tests.test_grading_sandbox import needs_bwrap
from tools.grading import container_sandbox, grade
from tools.grading.mutations import fill_in, reference_solutions
from tools.grading.nbgrader_course import build_course
from tools.grading.sandbox_kernel import SANDBOX_FAILED

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root can run kernels as other users")
KERNEL_USER = container_sandbox.FIRST_KERNEL_UID
BLOCKS, RESNET = "02_residual_blocks", "03_resnet50"


@pytest.fixture
def open_folder():
    """A folder every user can reach (pytest's own is root's alone), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="resnets-container-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def readable_by_a_kernel_user(paths: list[Path]) -> list[bool]:
    """Whether a kernel user may read each path (the shell's `test -r`, as this machine's Python lies under root's home)."""
    tests = "; ".join(f"test -r '{path}' && echo yes || echo no" for path in paths)
    result = subprocess.run(["sh", "-c", tests], user=KERNEL_USER, group=KERNEL_USER, extra_groups=[], cwd="/",
                            capture_output=True, text=True, check=True)
    return [answer == "yes" for answer in result.stdout.split()]


def without_network(command: list[str]) -> list[str]:
    """`command` in a network namespace of its own with only loopback, up (bwrap brings it up), and this Python
    reachable by other users wherever it lives (under /root here: that folder shown as an empty one, with Python)."""
    shown = {}
    for path in map(Path, (sys.base_prefix, os.path.realpath(sys.executable))):
        closed = [parent for parent in reversed(path.parents) if not os.stat(parent).st_mode & 0o001]
        if closed:
            shown[closed[0]] = closed[0] / path.relative_to(closed[0]).parts[0]
    covers = [argument for folder, inside in shown.items() for argument in ("--tmpfs", folder, "--bind", inside, inside)]
    return ["bwrap", "--dev-bind", "/", "/", "--unshare-net", *map(str, covers), "--", *command]


# --- Refusals ------------------------------------------------------------------------------------


def test_refuses_a_grader_that_is_not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(container_sandbox.ContainerNotReady, match="user 1000, not root"):
        container_sandbox.check_container(container_sandbox.kernel_uids(1))


@needs_root
@pytest.mark.skipif(not container_sandbox.networks(), reason="this machine has no network to refuse")
def test_the_grader_refuses_a_container_with_a_network_and_says_how_to_fix_it(tmp_path):
    (tmp_path / "submissions" / "alice").mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "tools.grading.grade", str(tmp_path / "submissions"),
                             "--out", str(tmp_path / "grades"), "--container-sandbox"],
                            cwd=KIT_DIR, capture_output=True, text=True)
    assert result.returncode == 2
    assert f"the container has a network ({', '.join(container_sandbox.networks())})" in result.stderr
    assert "docker run --network none" in result.stderr and not (tmp_path / "grades" / "grades.csv").exists()


@needs_root
@needs_bwrap
def test_a_network_namespace_with_only_loopback_passes_the_network_check():
    code = "from tools.grading.container_sandbox import networks; print(networks())"
    result = subprocess.run(without_network([sys.executable, "-c", code]), cwd=KIT_DIR, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- What the kernel users can reach -------------------------------------------------------------


@needs_root
def test_hidden_things_are_closed_to_kernel_users_but_the_way_to_python_and_then_given_back(open_folder):
    kit = open_folder / "kit"
    for name in ("notebooks/source.ipynb", ".git/config", "README.md", ".venv/lib/module.py"):
        (kit / name).parent.mkdir(parents=True, exist_ok=True)
        (kit / name).write_text("secret" if ".venv" not in name else "shown")
    modes = {path: path.stat().st_mode for path in [kit, *kit.rglob("*")]}
    paths = [kit, kit / "README.md", kit / "notebooks" / "source.ipynb", kit / ".git" / "config", kit / ".venv" / "lib" / "module.py"]
    with container_sandbox.hide_from_kernel_users([str(kit)], [str(kit / ".venv")]) as closed:
        seen = readable_by_a_kernel_user(paths)
    assert seen == [False, False, False, False, True]
    assert readable_by_a_kernel_user(paths) == [True] * 5  # given back
    assert sorted(closed) == sorted(str(kit / name) for name in ("README.md", "notebooks", ".git"))
    assert {path: path.stat().st_mode for path in modes} == modes


@needs_root
@needs_bwrap
def test_a_kernel_that_could_read_something_hidden_refuses_to_start(open_folder):
    """The grader's folder can be passed through but not listed, so only the kernel's own probe of what was
    closed finds the gradebook left readable in it: the launcher says GRADER SANDBOX FAILED, and no kernel starts."""
    run, student = open_folder / "run", open_folder / "run" / "alice" / "sandbox"
    student.mkdir(parents=True)
    run.chmod(0o711)
    (run / "gradebook.db").write_text("grades")  # readable by everyone: the grader forgot to close it
    homes = open_folder / "homes"
    homes.mkdir(mode=0o711)
    (open_folder / "connection.json").write_text("{}")
    settings = open_folder / "sandbox.json"
    settings.write_text(json.dumps({
        "isolated": True, "bwrap": None, "hide": [str(run)], "sandbox": str(run / "alice" / "sandbox"),
        "memory_bytes": 2**31, "timeout": 60,
        "container": {"uids": [KERNEL_USER], "homes": str(homes), "closed": [str(run / "gradebook.db")]},
    }))
    launcher = [sys.executable, str(grade.SANDBOX_KERNEL), str(settings), "-f", str(open_folder / "connection.json")]
    result = subprocess.run(without_network(launcher), cwd=student, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"{SANDBOX_FAILED}: student code could read {run / 'gradebook.db'}" in result.stderr
    assert not (homes / str(KERNEL_USER)).exists()  # its copy of the student's folder is gone with it


@needs_root
def test_every_process_of_a_kernel_user_is_ended():
    processes = [subprocess.Popen(["sleep", "60"], user=KERNEL_USER, group=KERNEL_USER, extra_groups=[]) for _ in range(3)]
    time.sleep(0.2)
    assert container_sandbox.tasks_of(KERNEL_USER) == 3
    container_sandbox.end_processes_of(KERNEL_USER)
    assert container_sandbox.tasks_of(KERNEL_USER) == 0
    for process in processes:
        process.wait(5)


# --- A class graded in this mode -----------------------------------------------------------------


@pytest.mark.slow
@needs_root
@needs_bwrap
def test_a_class_graded_in_a_container_without_network_scores_right_and_every_row_says_how(open_folder):
    """The reference and the untouched release, two workers (so two kernel users at once), from a copy of the kit
    with its own .venv, so that what the grader closes and gives back is the copy's."""
    kit = copy_kit(open_folder / "kit")
    python = venv_inside(kit)
    release = build_course(open_folder / "course")
    for student, solutions in (("reference", reference_solutions()), ("release", {})):
        (open_folder / "submissions" / student).mkdir(parents=True)
        for notebook in (BLOCKS, RESNET):
            nbformat.write(fill_in(release / f"{notebook}.ipynb", solutions), open_folder / "submissions" / student / f"{notebook}.ipynb")
    modes = {path: path.stat().st_mode for path in kit.iterdir()}
    command = [str(python), "-m", "tools.grading.grade", str(open_folder / "submissions"), "--out", str(open_folder / "grades"),
               "--container-sandbox", "--workers", "2", "--timeout", "120", "--memory", "3"]
    result = subprocess.run(without_network(command), cwd=kit, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    with open(open_folder / "grades" / "grades.csv") as file:
        rows = list(csv.DictReader(file))
    assert rows and all(row["reason"].endswith(grade.CONTAINER_SANDBOXED) for row in rows)
    scores = {student: sum(float(row["score"]) for row in rows if row["student_id"] == student) for student in ("reference", "release")}
    possible = sum(float(row["max_score"]) for row in rows if row["student_id"] == "reference")
    assert scores == {"reference": possible, "release": 0.0}, [row for row in rows if row["status"] != "passed"][:3]
    assert all("NotImplementedError" in row["reason"] for row in rows if row["student_id"] == "release")
    assert {path: path.stat().st_mode for path in kit.iterdir()} == modes
    assert not any(container_sandbox.tasks_of(uid) for uid in container_sandbox.kernel_uids(2))
