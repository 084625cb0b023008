"""A zygote that starts each grading kernel by forking a process that has already imported TensorFlow.

Why: importing TensorFlow, Keras and IPython costs about 3 s of CPU, once per notebook per
student, half of what grading a student cost beside the tests themselves. A worker
(tools/grading/grade.py) starts one zygote, which builds its sandboxed view once (bubblewrap,
the same view and self-check as tools/grading/sandbox_kernel.py, showing a fixed folder, the
worker's *slot*, where the worker puts the student being graded), imports those modules,
and then forks one kernel per request. A fork shares the imported modules' memory and takes
milliseconds. Each kernel still gets, from the fork on, everything the per-kernel sandbox gives:

- a user namespace of its own, as KERNEL_UID ("nobody") when the grader is root, holding its
  own mount, PID, IPC and host-name namespaces: a fresh, capped /tmp and /dev/shm (nothing a
  previous kernel wrote there is seen by the next; what the view showed below them, such as a
  .venv under /tmp, is shown again read-only), and it cannot name any process outside;
- no capabilities (dropped explicitly, as no exec does it), no new privileges;
- the same limits (memory, CPU time, processes), set and checked before student code runs;
- a supervisor ("init", PID 1 of the kernel's PID namespace) that reaps its processes, ends
  all of them when the kernel ends, and reports a kernel stopped for a limit, as the
  per-kernel launcher does.

Student code never runs in the zygote, which is not dumpable (no process of the grader's user
can read or change its memory), so one kernel cannot change what the next one starts from.
What differs from the per-kernel sandbox: the kernel's /proc is the zygote's (the zygote, its
sandbox's init and the kernel's own supervisors are listed there; a fresh /proc cannot be
mounted under bubblewrap's), and nothing there can be signalled or read beyond its status.

The grader's kernelspec still runs sandbox_kernel.py, which (with sandbox.ZYGOTE_VARIABLE set by the
worker) connects to the zygote's socket and stands for the kernel: it passes its stdout and
stderr, the kernel's working folder and connection file, relays an interrupt, and exits with
the kernel's exit code. When it is killed, the kernel is killed.

Run as a file inside the view, like sandbox_kernel.py, importing only the standard library
and that file before the preloaded modules.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import signal
import socket
import sys
import warnings

try:
    from tools.grading import sandbox_kernel as sandbox  # in the worker
except ImportError:
    import sandbox_kernel as sandbox  # in the view and in the kernelspec's launcher, where it is beside this file

ZYGOTE_IN_VIEW = "/run/grader/kernel_zygote.py"
READY = "ZYGOTE READY"  # the zygote's first line on stdout once its view is checked and its modules imported
# What the graded notebooks import (resnets_utils' own imports too), and what a kernel imports to start.
PRELOADED_MODULES = ("numpy", "tensorflow", "keras", "h5py", "PIL.Image", "matplotlib.pyplot",
                     "IPython.core.inputtransformer2", "ipykernel.kernelapp")
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID = 0x20000, 0x4000000, 0x8000000, 0x20000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
LINUX_CAPABILITY_VERSION_3 = 0x20080522

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def _checked(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


# --- In the worker: the zygote's command, and the launcher that stands for one kernel --------------


def zygote_command(settings: dict, slot: str, listener: int) -> list[str]:
    """bwrap's command line that runs the zygote in the view of `slot`, serving the socket `listener` (an open fd)."""
    here = os.path.dirname(os.path.abspath(__file__))
    check = sandbox.view_check(settings, slot)
    return [settings["bwrap"],
            *sandbox.view_options(settings, slot, "--ro-bind", os.path.join(here, "kernel_zygote.py"), ZYGOTE_IN_VIEW,
                                  "--setenv", "MALLOC_ARENA_MAX", "2"),  # read by glibc as a process starts: see run_kernel
            "--chdir", slot, "--", sys.executable, ZYGOTE_IN_VIEW, json.dumps(check), str(listener)]


def stand_for_kernel(address: str, kernel_args: list[str]) -> None:
    """The kernelspec's process: have the zygote start the kernel, relay an interrupt, exit as the kernel does."""
    connection = kernel_args[kernel_args.index("-f") + 1]
    request = {"cwd": os.path.realpath(os.getcwd()), "connection": open(connection).read(),
               "args": [sandbox.CONNECTION_IN_VIEW if arg == connection else arg for arg in kernel_args]}
    zygote = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        zygote.connect(address)
        socket.send_fds(zygote, [json.dumps(request).encode() + b"\n"], [1, 2])
    except OSError as error:
        sys.exit(f"{sandbox.SANDBOX_FAILED}: the worker's kernel zygote at {address} cannot be reached ({error})")
    # nbgrader interrupts a cell with SIGINT to this process's group; the kernel is elsewhere.
    signal.signal(signal.SIGINT, lambda *_: zygote.send(b"interrupt\n"))
    answer = b""
    while not answer.endswith(b"\n"):
        try:
            received = zygote.recv(64)
        except InterruptedError:
            continue
        if not received:
            sys.exit(f"{sandbox.SANDBOX_FAILED}: the kernel zygote stopped without the kernel's exit code")
        answer += received
    sys.exit(int(answer.split()[-1]))


# --- In the view: the zygote, and each kernel's start ---------------------------------------------


def preload() -> None:
    """Import what every graded notebook imports, so that a forked kernel finds it imported."""
    import importlib

    for name in PRELOADED_MODULES:
        importlib.import_module(name)
    import tensorflow as tf
    tf.keras.layers  # tf.keras loads Keras lazily, on first use  # noqa: B018


def serve(check: dict, listener: socket.socket) -> None:
    """Check the view, import, then fork a kernel session for each connection, for as long as the worker lives."""
    sandbox.check_view(check["hide"], check["shown"])
    libc.prctl(sandbox.PR_SET_DUMPABLE, 0, 0, 0, 0)  # no kernel of the grader's user may read or write this memory
    preload()
    # TensorFlow's import leaves one idle thread; a fork copies only the forking thread, and the kernel starts its
    # own thread pools at its first op. Python warns of the general risk of forking threads; the kernels run fine.
    warnings.filterwarnings("ignore", message=".*use of fork\\(\\) may lead to deadlocks", category=DeprecationWarning)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # sessions are reaped by the system
    print(READY, flush=True)
    while True:
        connection, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                kernel_session(connection, check)
            finally:
                os._exit(1)
        connection.close()


def receive_request(connection: socket.socket) -> dict:
    """The launcher's request; its stdout and stderr become this process's."""
    data, fds, _, _ = socket.recv_fds(connection, 1 << 16, 2)
    while not data.endswith(b"\n"):
        more = connection.recv(1 << 16)
        if not more:
            raise OSError("the launcher closed the connection before its request was complete")
        data += more
    for target, fd in zip((1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    nothing = os.open(os.devnull, os.O_RDONLY)  # a kernel reads nothing on stdin (ipykernel asks the front end)
    os.dup2(nothing, 0)
    os.close(nothing)
    return json.loads(data)


def kernel_session(connection: socket.socket, check: dict) -> None:
    """One kernel: namespaces and a fresh /tmp, then its init (PID 1), while this process relays the launcher's requests."""
    request = receive_request(connection)
    try:
        if not sandbox.within(request["cwd"], check["slot"]):
            raise OSError(f"the kernel was to start in {request['cwd']}, outside the student's folder {check['slot']}")
        libc.prctl(sandbox.PR_SET_DUMPABLE, 1, 0, 0, 0)  # the zygote is not: this process must write its own maps
        sandbox.own_user_namespace(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS)
        _checked(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
        for path, size in (("/tmp", sandbox.TEMPORARY_BYTES), ("/dev/shm", sandbox.SHARED_MEMORY_BYTES)):
            fresh_tmpfs(path, size)
        libc.prctl(sandbox.PR_SET_DUMPABLE, 0, 0, 0, 0)
        os.chdir(request["cwd"])
    except OSError as error:
        print(f"{sandbox.SANDBOX_FAILED}: the kernel's namespaces cannot be set up ({error})", file=sys.stderr, flush=True)
        connection.sendall(b"exit 1\n")
        return
    init = os.fork()
    if init == 0:
        connection.close()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        try:
            run_init(check, request)
        finally:
            os._exit(1)
    relay(connection, init)


def mounts_below(path: str) -> list[str]:
    """The mount points of this view strictly below `path` that no other one below it holds (binds inside them come along)."""
    decode = lambda field: re.sub(r"\\([0-7]{3})", lambda octal: chr(int(octal[1], 8)), field)  # mountinfo escapes spaces
    with open("/proc/self/mountinfo") as mountinfo:
        points = [decode(line.split()[4]) for line in mountinfo]
    below = [point for point in points if sandbox.within(point, path) and point != path]
    return sorted({point for point in below if not any(sandbox.within(point, other) and point != other for other in below)})


def fresh_tmpfs(path: str, size: int) -> None:
    """Cover `path` with an empty tmpfs of `size` bytes, and show again what the view showed below it: the student's
    folder and Python, when they live under /tmp (a grading run, a kit cloned there with its .venv)."""
    kept = {point: os.open(point, os.O_PATH) for point in mounts_below(path)}
    _checked(libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777".encode()),
             f"a fresh {path}")
    for point, shown in kept.items():
        if os.path.isdir(f"/proc/self/fd/{shown}"):
            os.makedirs(point)
        else:
            os.makedirs(os.path.dirname(point), exist_ok=True)
            open(point, "x").close()
        _checked(libc.mount(f"/proc/self/fd/{shown}".encode(), point.encode(), None, MS_BIND | MS_REC, None),
                 f"{point} again in the fresh {path}")
        os.close(shown)
        if not os.statvfs(point).f_flag & os.ST_RDONLY:  # a bind keeps the view's read-only flag, which it cannot drop
            raise OSError(f"{point} would be writable")


def relay(connection: socket.socket, init: int) -> None:
    """Pass an interrupt to the kernel's init; kill it when the launcher is gone; send back its exit code."""
    ended = os.pidfd_open(init)
    while True:
        readable, _, _ = select.select([connection, ended], [], [])
        if ended in readable:
            _, status = os.waitpid(init, 0)
            connection.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
            return
        message = connection.recv(64)
        if not message:  # the launcher was killed: so is the kernel, with every process of its PID namespace
            os.kill(init, signal.SIGKILL)
            os.waitpid(init, 0)
            return
        if b"interrupt" in message:
            os.kill(init, signal.SIGINT)


def run_init(check: dict, request: dict) -> None:
    """PID 1 of the kernel's namespace: start the kernel, forward interrupts, reap, report a limit as run_kernel does."""
    kernel = os.fork()
    if kernel == 0:
        become_kernel(check, request)
    signal.signal(signal.SIGINT, lambda *_: os.kill(kernel, signal.SIGINT))
    while True:  # an orphan's parent is this process: reap them all until the kernel ends
        pid, status, usage = os.wait4(-1, 0)
        if pid == kernel:
            break
    os._exit(sandbox.kernel_exit_code(status, usage, check["cpu_seconds"]))


def drop_capabilities() -> None:
    """Drop every capability the user namespace gave: without an exec, nothing else does."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    _checked(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no new privileges")
    _checked(libc.capset(ctypes.byref(Header(LINUX_CAPABILITY_VERSION_3, 0)), (Data * 2)()), "capset")
    with open("/proc/self/status") as status:
        kept = [line for line in status if line.startswith(("CapInh", "CapPrm", "CapEff", "CapAmb")) and int(line.split()[1], 16)]
    if kept:
        raise OSError(f"capabilities left: {' '.join(kept)}")


def become_kernel(check: dict, request: dict) -> None:
    """The kernel: its limits, no capabilities, then ipykernel as `python -m ipykernel_launcher` would run it."""
    try:
        sandbox.set_limits(check["memory_bytes"], check["cpu_seconds"])
        drop_capabilities()
        libc.prctl(sandbox.PR_SET_DUMPABLE, 1, 0, 0, 0)  # its own /proc files, as an exec'd kernel has them
        sandbox.write_own_connection(request["connection"])
    except (OSError, ValueError) as error:
        print(f"{sandbox.SANDBOX_FAILED}: the kernel's limits cannot be set up ({error})", file=sys.stderr, flush=True)
        os._exit(1)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = ["ipykernel_launcher", *request["args"], *sandbox.KERNEL_OPTIONS]
    sys.path[0] = os.getcwd()  # as `python -m` puts it: the notebook's folder, where resnets_utils.py is
    from ipykernel import kernelapp

    code = 0
    try:
        kernelapp.launch_new_instance()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    check, listener = json.loads(sys.argv[1]), socket.socket(fileno=int(sys.argv[2]))
    serve(check, listener)


if __name__ == "__main__":
    main()
