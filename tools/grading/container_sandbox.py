"""The container is the sandbox: `--container-sandbox`, for a grader that runs as root in a disposable container.

Where bubblewrap cannot build its view (a Docker, Kubernetes or Gradescope container without user
namespaces), a grader running as root can still keep student code from what it must not see with
what Linux gives root everywhere: other users and file permissions. Each kernel runs as a user of
its own, one of KERNEL_UIDS, taken for as long as the kernel runs, so that students graded at once
never share one and cannot read each other's files or signal each other's processes; every
process of that user is killed before and after the kernel, so nothing lingers into the next
student. The kernel works in a private copy of the student's folder, owned by that user, with its
HOME and temporary files there; the grading run, the gradebook, the grades, the submissions and
the kit (its source notebooks and .git) stay root's alone (hide_from_kernel_users), except the
Python installation the kernel runs. It has the bubblewrap kernel's limits (memory, CPU time,
processes; tools/grading/sandbox_kernel.py) and runs its self-check before any student code:
nothing hidden readable, no network but loopback, else GRADER SANDBOX FAILED.

What the container must give, because no user can take it away from another: no network
(nothing but `lo`: `docker run --network none`), checked before grading and by every kernel.
What this mode does not do that bubblewrap does: student code sees the container's files that are
open to every user (the system, Python), and may write files in its own folder and in the
world-writable ones (/tmp, /dev/shm), each file at most TEMPORARY_BYTES; the total is the
container's disk (give the pod an ephemeral-storage limit). The kernel user's files there are
removed when its kernel ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import glob
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tools.grading.sandbox_kernel import (
    LIMIT_REACHED, PROCESS_LIMIT, SANDBOX_FAILED, TEMPORARY_BYTES, check_view, cpu_seconds, kept_environment,
    python_dirs, shown_inside_hidden, start_kernel, within,
)

# Ids that no user of an ordinary image has (its users start at 1000, "nobody" is 65534) and that a container's user
# namespace still maps (most map 65536 ids). Two per worker: a kernel being cleaned up never holds up the next one.
FIRST_KERNEL_UID = 62000
KERNEL_USERS_PER_WORKER = 2
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")  # where a kernel user's files may outlive its kernel
TAKE_USER_SECONDS = 120  # a kernel waits this long for a user of its own before it is a grader problem
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
HOW_TO_FIX = """\
--container-sandbox is for a grader that runs as root in a container of its own, without network: each
kernel then runs as an unprivileged user, which cannot read what the grader hides or reach another student.
- Run the container as root: `docker run --user 0 ...`; Kubernetes: `runAsUser: 0` (deploy/README.md).
- Give it no network, only loopback: `docker run --network none ...`; Kubernetes: deploy/README.md.
- The kernel's Python must be open to every user (chmod o+rx on it and the folders above it).
Where bubblewrap works, leave out --container-sandbox; to grade unprotected, --no-sandbox (every row says so)."""


class ContainerNotReady(RuntimeError):
    """This machine is not a container where --container-sandbox can keep student code in."""


def kernel_uids(workers: int) -> list[int]:
    return list(range(FIRST_KERNEL_UID, FIRST_KERNEL_UID + KERNEL_USERS_PER_WORKER * workers))


def networks() -> list[str]:
    """The network interfaces other than loopback: what check_view refuses in a kernel."""
    return [name for _, name in socket.if_nameindex() if name != "lo"]


def check_container(uids: list[int]) -> None:
    """Raise ContainerNotReady, saying why, unless this grader runs as root, without network, with
    `uids` unused by any user of the container, and its Python runs as one of them."""
    if os.geteuid() != 0:
        raise ContainerNotReady(f"the grader runs as user {os.geteuid()}, not root, so it cannot run kernels as other users")
    if networks():
        raise ContainerNotReady(f"the container has a network ({', '.join(networks())}), which student code could use")
    taken = []
    for uid in uids:
        with contextlib.suppress(KeyError):
            taken.append(f"{pwd.getpwuid(uid).pw_name} ({uid})")
    if taken:
        raise ContainerNotReady(f"the kernels' user ids {uids[0]}-{uids[-1]} belong to users of the container: "
                                f"{', '.join(taken)}")
    try:
        probe = subprocess.run([sys.executable, "-c", "pass"], user=uids[0], group=uids[0], extra_groups=[], cwd="/",
                               capture_output=True, text=True)
        why = probe.stderr.strip()[-200:] if probe.returncode else None
    except OSError as error:  # it cannot even start
        why = str(error)
    if why:
        raise ContainerNotReady(f"the kernel's Python does not run as an unprivileged user ({why})")


def hiding_plan(hidden: list[str], shown: list[str]) -> tuple[list[str], list[str]]:
    """What hide_from_kernel_users closes to other users, and the folders it leaves them only to pass through:
    a hidden folder with nothing shown inside is closed; in one that has (a kit holding its .venv), every entry
    off the way to what is shown is closed, at every level, and the folders on the way are passed through."""
    closed, passed = [], []

    def visit(folder: str, inside: list[str]) -> None:
        passed.append(folder)
        for entry in os.scandir(folder):
            below = [path for path in inside if within(path, entry.path)]
            if entry.path in inside or entry.is_symlink():
                continue  # shown; or a link, whose permissions are its target's
            if below:
                visit(entry.path, below)
            else:
                closed.append(entry.path)

    for root in map(os.path.abspath, hidden):
        if not os.path.isdir(root) or any(within(root, path) for path in shown):
            continue
        inside = [path for path in shown if within(path, root)]
        if inside:
            visit(root, inside)
        else:
            closed.append(root)
    return closed, passed


@contextlib.contextmanager
def hide_from_kernel_users(hidden: list[str], shown: list[str]) -> Iterator[list[str]]:
    """Take every permission of other users from the hidden things (the kernel users are "other"), leaving
    only search on the folders on the way to what is shown; give the permissions back at the end (a container
    is thrown away, but a grader on a machine of its own leaves it as it was). Yields what it closed,
    for the kernels' self-check."""
    closed, passed = hiding_plan(hidden, shown)
    changed = []
    try:
        for path, keep in [*((path, 0) for path in closed), *((path, 0o001) for path in passed)]:
            mode = os.lstat(path).st_mode & 0o7777
            changed.append((path, mode))
            os.chmod(path, mode & ~0o007 | keep)
        yield closed
    finally:
        for path, mode in reversed(changed):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path, mode)


# --- The kernel's launcher, as root (tools/grading/sandbox_kernel.py's main hands over to it) -----------------


def readable(paths: list[str]) -> list[str]:
    """Those of `paths` this process can read, or enter when a folder."""
    return [path for path in paths if os.access(path, os.R_OK) or (os.path.isdir(path) and os.access(path, os.X_OK))]


def take_kernel_user(homes: str, uids: list[int]) -> tuple[int, int]:
    """A kernel user no other kernel holds, and the open lock file that holds it until this process ends.

    A lock (flock) rather than a user per worker: the lock goes with the process however it
    ends, and the next kernel that takes the user ends whatever the last one left running."""
    deadline = time.monotonic() + TAKE_USER_SECONDS
    while time.monotonic() < deadline:
        for uid in uids:
            lock = os.open(os.path.join(homes, f"{uid}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return uid, lock
            except BlockingIOError:
                os.close(lock)
        time.sleep(0.2)
    sys.exit(f"{SANDBOX_FAILED}: no kernel user was free for {TAKE_USER_SECONDS} s")


def become(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def tasks_of(uid: int) -> int:
    """How many processes and threads `uid` runs, from /proc (a task's folder belongs to its user)."""
    count = 0
    for task in glob.glob("/proc/[0-9]*/task/[0-9]*"):
        with contextlib.suppress(OSError):
            count += os.stat(task).st_uid == uid
    return count


def end_processes_of(uid: int) -> None:
    """Kill every process of `uid`: a child that becomes `uid` and sends SIGKILL to all it may signal (kill -1,
    which Linux does at once, so a fork bomb cannot outrun it), until none is left; this process, their
    subreaper, reaps them in between. A few rounds at most: a zombie that another process must reap stays."""
    for _ in range(20):
        killer = os.fork()
        if killer == 0:
            try:
                become(uid)
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                os._exit(0)
            os._exit(1)
        _, status = os.waitpid(killer, 0)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        if os.waitstatus_to_exitcode(status) == 0:
            return
        time.sleep(0.05)


def remove_files_of(uid: int, home: str) -> None:
    """Remove the kernel user's home, and what it left in the world-writable folders."""
    shutil.rmtree(home, ignore_errors=True)
    for folder in WORLD_WRITABLE:
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)


def private_copy(folder: str, home: str, uid: int) -> str:
    """A fresh `home` for the kernel user, holding a copy of the student's `folder` as its working folder."""
    shutil.rmtree(home, ignore_errors=True)
    work = os.path.join(home, "work")
    shutil.copytree(folder, work, symlinks=True)
    os.chmod(home, 0o700)
    for parent, folders, files in os.walk(home):
        for name in [".", *folders, *files]:
            os.lchown(os.path.join(parent, name), uid, uid)
    return work


def start_as(uid: int, work: str, environment: dict[str, str], settings: dict, check: dict, kernel_args: list[str]) -> None:
    """In the kernel's process: become `uid` with the kernel's limits, check what it can reach, start the kernel."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        become(uid)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after become(): changing user clears it
        cpu = cpu_seconds(settings)
        limits = {resource.RLIMIT_AS: (settings["memory_bytes"],) * 2, resource.RLIMIT_CPU: (cpu, cpu + 5),
                  resource.RLIMIT_NPROC: (PROCESS_LIMIT,) * 2, resource.RLIMIT_CORE: (0, 0),
                  resource.RLIMIT_FSIZE: (TEMPORARY_BYTES,) * 2}
        for limit, values in limits.items():
            resource.setrlimit(limit, values)
    except (OSError, ValueError) as error:
        sys.exit(f"{SANDBOX_FAILED}: the kernel's user and limits cannot be set up ({error})")
    if 0 in os.getresuid() or any(resource.getrlimit(limit) != values for limit, values in limits.items()):
        sys.exit(f"{SANDBOX_FAILED}: the kernel would run as root or without its limits")
    check_view(check["hide"], check["shown"])
    opened = readable(check["closed"])
    if opened:
        sys.exit(f"{SANDBOX_FAILED}: student code could read {', '.join(opened[:3])}")
    os.chdir(work)
    os.environ.clear()
    os.environ.update(environment)
    start_kernel(kernel_args)


def run_kernel_as_user(settings: dict, kernel_args: list[str]) -> None:
    """The kernel's launcher in the container: take a kernel user, start the kernel as that user in a private copy of
    the student's folder, wait for it, say on stderr (LIMIT_REACHED) when a limit stopped it, then end every process
    of that user and remove its files. Exit with the kernel's status, as sandbox_kernel.run_kernel does."""
    cwd = os.getcwd()
    if not within(cwd, settings["sandbox"]):
        sys.exit(f"{SANDBOX_FAILED}: the kernel was to start in {cwd}, outside the student's folder {settings['sandbox']}")
    container = settings["container"]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with nbgrader; the next kernel of its user cleans up
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # the kernel's orphans are this process's to reap
    uid, _lock = take_kernel_user(container["homes"], container["uids"])
    home = os.path.join(container["homes"], str(uid))
    end_processes_of(uid)
    remove_files_of(uid, home)
    work = private_copy(cwd, home, uid)
    connection_index = kernel_args.index("-f") + 1
    connection = os.path.join(home, "connection.json")
    shutil.copyfile(kernel_args[connection_index], connection)
    os.chown(connection, uid, uid)
    kernel_args = [*kernel_args[:connection_index], connection, *kernel_args[connection_index + 1:]]
    check = {"hide": settings["hide"], "shown": shown_inside_hidden(settings["hide"], [*python_dirs(), settings["sandbox"]]),
             "closed": container["closed"]}
    kept = kept_environment(os.environ)  # bwrap's --setenv NAME VALUE options
    environment = {**dict(zip(kept[1::3], kept[2::3])), "HOME": home, "TMPDIR": home,
                   "MPLCONFIGDIR": os.path.join(home, "matplotlib")}
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # nbgrader interrupts a cell with SIGINT to the process group, for the kernel
    kernel = os.fork()
    if kernel == 0:
        start_as(uid, work, environment, settings, check, kernel_args)
    _, status, usage = os.wait4(kernel, 0)
    stopped_by = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    cpu = cpu_seconds(settings)
    if stopped_by in (signal.SIGXCPU, signal.SIGKILL) and usage.ru_utime + usage.ru_stime >= cpu:
        print(f"{LIMIT_REACHED}: the kernel was stopped after {cpu} s of CPU time", file=sys.stderr, flush=True)
    elif status and tasks_of(uid) >= PROCESS_LIMIT // 2:
        print(f"{LIMIT_REACHED}: the kernel ended with its processes at the limit of {PROCESS_LIMIT}", file=sys.stderr, flush=True)
    end_processes_of(uid)
    remove_files_of(uid, home)
    sys.exit(os.waitstatus_to_exitcode(status) if stopped_by is None else 128 + stopped_by)


@contextlib.contextmanager
def kernel_users(hidden: list[Path], workers: int) -> Iterator[dict]:
    """For a grading run: the hidden things closed to the kernel users and a folder for their homes, for as long as
    it lasts; yields what the kernels' settings (sandbox.json, "container") hold in this mode."""
    uids = kernel_uids(workers)
    homes = tempfile.mkdtemp(prefix="resnets-kernels-")
    os.chmod(homes, 0o711)  # each kernel user reaches its own home there, and lists none
    try:
        with hide_from_kernel_users([str(path) for path in hidden], python_dirs()) as closed:
            yield {"uids": uids, "homes": homes, "closed": closed}
    finally:
        for uid in uids:  # a kernel whose launcher was killed with its worker
            end_processes_of(uid)
        shutil.rmtree(homes, ignore_errors=True)
