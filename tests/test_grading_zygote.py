"""A kernel forked by the worker's zygote is as isolated as one started alone, and as controllable.

The zygote (tools/grading/kernel_zygote.py) imports TensorFlow once and forks each grading
kernel. Each kernel must still: run as a user without capabilities, with its limits; see a
fresh, empty /tmp (nothing a previous student's kernel left there); see its folder read-only
and nothing of what the sandbox hides; stop a cell when nbgrader interrupts it; and die with
every process it started when nbgrader kills it. That the whole red-team catalogue scores 0
with kernels from the zygote: tests/test_grading_red_team.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from resnets_utils import KIT_DIR
from tools.grading import grade

needs_bwrap = pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap is not installed (apt-get install bubblewrap)")

# Runs in a worker's namespaces (no network, as the zygote's self-check requires): two kernels from one zygote,
# each asked what it can do; prints one JSON line of findings.
WORKER_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    sys.path.insert(0, {kit!r})
    from jupyter_client.manager import KernelManager
    from tools.grading.grade import KernelZygote, SANDBOX_KERNEL
    from tools.grading.sandbox_kernel import ZYGOTE_VARIABLE

    folder = Path({folder!r})
    settings = {settings!r}
    (folder / "settings.json").write_text(json.dumps(settings))
    spec = folder / "jupyter" / "kernels" / "zygote-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({{"argv": [sys.executable, str(SANDBOX_KERNEL), str(folder / "settings.json"),
                                                           "-f", "{{connection_file}}"], "language": "python"}}))
    os.environ["JUPYTER_PATH"] = str(folder / "jupyter")
    zygote = KernelZygote(folder / "run", settings)
    os.environ[ZYGOTE_VARIABLE] = zygote.address
    student = zygote.slot / "student" / "assignment"
    student.mkdir(parents=True)

    def kernel():
        manager = KernelManager(kernel_name="zygote-test")
        manager.start_kernel(cwd=str(student))
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        return manager, client

    def run(client, code, timeout=60):
        out = []
        reply = client.execute_interactive(code, timeout=timeout, output_hook=lambda m: out.append(m["content"].get("text", "")))
        return reply["content"]["status"], "".join(out).strip()

    def zygote_processes():
        # How many processes run the zygote's code: the zygote, and each kernel's session, init and kernel.
        count = 0
        for path in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                count += path.read_bytes().split(bytes(1))[1:2] == [b"/run/grader/kernel_zygote.py"]
            except OSError:
                pass
        return count

    found = {{}}
    manager, client = kernel()
    found["first"] = run(client, '''
    import os, resource, json
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    def open_files():
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                found.append((int(fd), os.readlink("/proc/self/fd/" + fd)))
            except OSError:  # the folder listing's own descriptor, closed by now
                pass
        return found
    def can_write(path):
        try:
            open(path, "w").close()
            return True
        except OSError:
            return False
    print(json.dumps({{"uid": os.getuid(), "caps": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
                      "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0], "cwd": os.getcwd(),
                      "tmp_files": [name for name in os.listdir("/tmp") if not os.path.isdir("/tmp/" + name)], "stdin": os.readlink("/proc/self/fd/0"),
                      "open_files": open_files(),"writes_folder": can_write("planted.txt"),
                      "secret": os.path.exists({secret!r}), "tensorflow_imported": "tensorflow" in __import__("sys").modules}}))
    open("/tmp/planted.py", "w").write("planted")
    ''')
    started = time.monotonic()
    client.execute("import time\\ntime.sleep(60)")
    time.sleep(2)
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=30)
    found["interrupt"] = [reply["content"].get("ename"), round(time.monotonic() - started)]
    found["with_kernel"] = zygote_processes()
    manager.shutdown_kernel(now=True)
    ended_by = time.monotonic() + 10  # the kernel's session and init end a moment after the kernel itself
    while zygote_processes() > 1 and time.monotonic() < ended_by:
        time.sleep(0.1)
    found["after_kill"] = zygote_processes()
    manager, client = kernel()
    found["second"] = run(client, "import os\\nprint(os.listdir('/tmp'))")
    manager.shutdown_kernel()
    print(json.dumps(found))
""")


def class_settings(folder: Path) -> dict:
    """A grading run's sandbox settings, hiding `folder/secret` (an answers file) and the run folder `folder/run`."""
    (folder / "secret").mkdir()
    (folder / "secret" / "answers.txt").write_text("42")
    (folder / "run").mkdir()
    return {"isolated": True, "bwrap": shutil.which("bwrap"), "hide": [str(folder / "secret"), str(folder / "run")],
            "sandbox": None, "memory_bytes": 4 * 2**30, "timeout": 60, "container": None}


def run_in_a_worker(script: str) -> subprocess.CompletedProcess:
    """Run `script` as a grading worker runs: without network, in a PID namespace, with a pipe on stdin (its students)."""
    return subprocess.run([*grade.worker_prefix(shutil.which("bwrap")), sys.executable, "-c", script], capture_output=True,
                          text=True, input="", timeout=600, cwd=KIT_DIR)


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("zygote")
    settings = class_settings(folder)
    result = run_in_a_worker(WORKER_SCRIPT.format(kit=str(KIT_DIR), folder=str(folder), settings=settings,
                                                  secret=str(folder / "secret" / "answers.txt")))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@needs_bwrap
def test_a_kernel_from_the_zygote_has_tensorflow_imported_and_runs_without_privileges_or_secrets(findings):
    status, printed = findings["first"]
    assert status == "ok", printed
    seen = json.loads(printed)
    assert seen["tensorflow_imported"], "the kernel should start with TensorFlow imported: that is the zygote's point"
    assert seen["uid"] != 0 and int(seen["caps"], 16) == 0 and seen["no_new_privs"] == "1"
    assert seen["nproc"] > 0 and seen["cwd"].endswith("student/assignment")
    assert not seen["writes_folder"], "the student's folder must be read-only"
    assert not seen["secret"], "the hidden folder must not be visible"
    assert seen["stdin"] == "/dev/null", "stdin must not be a pipe of the grader's (the worker reads its students there)"
    beyond_stdio = [target for fd, target in seen["open_files"] if fd > 2]
    assert not [target for target in beyond_stdio if target.startswith("pipe:")], beyond_stdio
    # Folders only (.ipython, and the way to what the view shows below /tmp: its folder, Python), and its own connection file.
    assert seen["tmp_files"] == ["kernel-connection.json"], "a kernel's /tmp starts empty but for what the kernel itself made"


@needs_bwrap
def test_the_next_kernel_does_not_see_what_the_previous_one_left_in_tmp(findings):
    status, printed = findings["second"]
    assert status == "ok" and "planted.py" not in printed, printed


@needs_bwrap
def test_an_interrupt_stops_the_cell_and_killing_the_kernel_ends_its_processes(findings):
    name, seconds = findings["interrupt"]
    assert name == "KeyboardInterrupt" and seconds < 30
    assert findings["with_kernel"] == 4, "the zygote, the kernel's session, its init and the kernel itself"
    assert findings["after_kill"] == 1, "only the zygote is left once the kernel is killed"


ZYGOTE_THAT_ALSO_SHOWS = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {kit!r})
    from tools.grading import sandbox_kernel
    from tools.grading.grade import KernelZygote
    view_arguments = sandbox_kernel.view_arguments
    sandbox_kernel.view_arguments = lambda *args: view_arguments(*args) + ["--ro-bind", {secret!r}, {secret!r}]
    try:
        KernelZygote(Path({run!r}), {settings!r})
    except OSError as error:
        print("REFUSED:", error)
""")


@needs_bwrap
def test_a_zygote_whose_view_shows_a_hidden_file_refuses_to_start_and_says_why(tmp_path):
    settings = class_settings(tmp_path)
    result = run_in_a_worker(ZYGOTE_THAT_ALSO_SHOWS.format(kit=str(KIT_DIR), secret=str(tmp_path / "secret"),
                                                           run=str(tmp_path / "run"), settings=settings))
    assert "REFUSED: the kernel zygote did not start" in result.stdout, result.stdout + result.stderr[-2000:]
    assert "GRADER SANDBOX FAILED: student code could read " + str(tmp_path / "secret" / "answers.txt") in result.stderr
