"""Start the kernel that runs one student's code while it is graded.

The grader's kernelspec calls `python tools/grading/sandbox_kernel.py SETTINGS.json -f CONNECTION_FILE`.
Where the grading worker runs a kernel zygote (ZYGOTE_VARIABLE), this file only asks it for the kernel, which
the zygote forks in the same view, checked once (tools/grading/kernel_zygote.py); what follows is the view
and the checks both use, and how a kernel starts without a zygote.
With SETTINGS["isolated"], the kernel starts inside a view of the filesystem that bubblewrap
(`bwrap`, SETTINGS["bwrap"]) builds from an empty root, holding only what the kernel needs:
the system's /usr and /etc and this Python installation, read-only; an empty, capped /tmp; the
connection file; and the student's folder SETTINGS["sandbox"], read-only, as the working
folder. Nothing else exists there, wherever the kit, its .venv or the temporary folder live.
A folder of SETTINGS["hide"] (the kit, the submissions, the grades, the grading run with the
gradebook and the other students) that lies inside something shown (a kit under /usr/local)
is covered by an empty tmpfs, and only the Python installation or the student's folder is
shown again inside it (a .venv inside the kit, a grading run inside the kit).

Why bwrap rather than `unshare` + `mount` by hand: it builds the whole view in one command,
the same way for root and for other users (in a user namespace), drops every capability (a
root kernel could otherwise unmount what covers the secrets), and stops at the first mount
that fails. The hand-written mounts started from the whole filesystem and had to cover each
secret, and covered none when the kit's Python lived in the temporary folder.

Before the kernel starts, this launcher checks the view from inside: if anything under the
hidden folders other than Python and the student's folder is readable, or a network other
than loopback exists, it prints SANDBOX_FAILED and exits non-zero, so the notebook is "not
graded" for a grader problem and nothing of the student's runs. The network namespace is the
grading worker's (tools/grading/grade.py): the kernel shares its loopback with nbgrader, which talks
to it over ZMQ.

Limits, each set up or refused (SANDBOX_FAILED), never left out:
- Memory: SETTINGS["memory_bytes"] of address space per process (RLIMIT_AS).
- Disk: none at all. The student's folder is shown read-only (the graded notebooks write no
  file), so student code cannot fill the disk nor plant a file or a link where nbgrader later
  writes the graded notebook and the feedback is made from it. It may write only to /tmp and
  /dev/shm, which are capped tmpfs (memory).
- Processes: PROCESS_LIMIT tasks (threads count too) with RLIMIT_NPROC, a fork bomb's end.
  The kernel runs in a user namespace of its own, where RLIMIT_NPROC counts only its own
  tasks (Linux 5.14 and later count it per user namespace), not all the processes of the
  grader's user on the machine. Linux never applies RLIMIT_NPROC to root (measured here:
  200 forks under a limit of 50 as root, even with every capability dropped), so a grader
  running as root runs the kernel as KERNEL_UID ("nobody"): bwrap keeps only CAP_SETUID and
  CAP_SETGID for the switch, which then drops them. That also keeps the kernel from sending a
  signal to the grader's processes. A pids cgroup would count better, but needs delegation.
- CPU: CPU_TIMEOUTS_PER_KERNEL times the cell timeout SETTINGS["timeout"] of CPU time for the
  kernel process (RLIMIT_CPU, all its threads), so a cell that ignores the interrupt does not
  hold a core until the whole student times out. A small supervisor, the kernel's parent,
  says on stderr (LIMIT_REACHED) when the kernel was stopped for it, or ended with its
  processes at the limit (a fork bomb that took the kernel's own threads), which the grader reports.

Run as a file, not a module: inside the view only this file is shown (at LAUNCHER_IN_VIEW),
and it imports nothing but the standard library.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import resource
import signal
import socket
import sys

SANDBOX_FAILED = "GRADER SANDBOX FAILED"
LIMIT_REACHED = "GRADER SANDBOX LIMIT"  # how the supervisor's line starts when it stopped a kernel for a limit
INSIDE = "--inside-view"
LAUNCHER_IN_VIEW = "/run/grader/sandbox_kernel.py"
CONNECTION_IN_VIEW = "/tmp/kernel-connection.json"  # the kernel's own copy: ipykernel rewrites it, as its owner
CONNECTION_GIVEN = "/run/grader/connection.json"  # nbgrader's, as bwrap writes it (owned by root)
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What student code may write outside its folder is in memory (tmpfs), so it is capped; the rest of the view is read-only.
TEMPORARY_BYTES, SHARED_MEMORY_BYTES, COVER_BYTES = 512 * 2**20, 64 * 2**20, 2**20
# Its own processes (a /proc without nbgrader's /proc/PID/root, a way round the view), IPC and host name,
# no capabilities; it dies with its launcher.
KERNEL_NAMESPACES = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                     "--die-with-parent", "--cap-drop", "ALL")
# What a grader running as root keeps, only to switch the kernel to KERNEL_UID (the switch drops them).
SWITCH_USER_CAPABILITIES = ("--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID")
KERNEL_UID = KERNEL_GID = 65534  # "nobody" (the overflow id) on every Linux
# TensorFlow starts about 2 threads per core plus 20; 512 tasks leave room for 200 cores and stop a fork bomb early.
PROCESS_LIMIT = 512
CPU_TIMEOUTS_PER_KERNEL = 5  # the reference notebooks use a tenth of it at the default 60 s timeout
# Linux checks RLIMIT_CPU against CPU time sampled at each clock tick, which charges a busy process whole ticks,
# while wait4 reports the exact time: on a loaded machine the kernel is stopped at 0.98 s of a 1 s limit.
# Half the limit tells the limit apart from student code that sent itself SIGXCPU at once.
LIMIT_SHARE_SEEN = 0.5
# Only these variables reach student code: the grader's environment may hold tokens and says where the grading run is.
KEPT_VARIABLES = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "MPLBACKEND", "PYTHONHASHSEED")
KEPT_PREFIXES = ("TF_", "KERAS_", "OMP_")  # what changes TensorFlow's numbers or threads
CLONE_NEWUSER, PR_SET_DUMPABLE = 0x10000000, 4
KERNEL_OPTIONS = ("--IPKernelApp.capture_fd_output=False", "--HistoryManager.hist_file=:memory:")
ZYGOTE_VARIABLE = "RESNETS_GRADER_ZYGOTE"  # set by a worker that runs a kernel zygote: its socket (tools/grading/kernel_zygote.py)


def within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def python_dirs() -> list[str]:
    """The folders this Python imports from (installation, standard library, site-packages), also under their real paths."""
    candidates = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable)), *sys.path[1:]}  # sys.path[0] is this file's folder
    found = set()
    for path in filter(None, candidates):
        if os.path.exists(path):
            found |= {os.path.abspath(path), os.path.realpath(path)}
    return sorted(found)


def shown_inside_hidden(hidden: list[str], shown: list[str]) -> list[str]:
    """The shown paths that lie inside a hidden folder: the only things there the kernel may see."""
    return [path for path in shown if any(within(path, root) and path != root for root in hidden)]


def parents_to_make(destinations: list[str], bound: list[str], tmpfs: list[str]) -> list[str]:
    """The folders bwrap would make on its way to `destinations`: those on its empty root or on a `tmpfs`, not in a `bound` folder.

    bwrap makes them readable by root alone, and the kernel, which does not run as root
    (run_kernel), could then reach neither Python nor its own folder.
    """
    parents = {os.path.dirname(path.rstrip("/")) for path in destinations}
    while any(os.path.dirname(path) not in parents for path in parents if path != "/"):
        parents |= {os.path.dirname(path) for path in parents}

    def on_tmpfs(path: str) -> bool:
        deepest = max((folder for folder in bound + tmpfs if within(path, folder)), key=len, default=None)
        return deepest is None or (deepest in tmpfs and deepest != path)
    return sorted(path for path in parents if path != "/" and on_tmpfs(path))


def view_arguments(hidden: list[str], python: list[str], sandbox: str) -> list[str]:
    """bwrap's mount options, parents before children, so that a cover comes after what it covers and before what it shows again."""
    system = [path for path in SYSTEM_DIRS if os.path.isdir(path) and not os.path.islink(path)]
    read_only = system + python
    mounts = [(path, 0, ["--symlink", os.readlink(path), path]) for path in SYSTEM_DIRS if os.path.islink(path)]
    mounts += [(path, 0, ["--ro-bind", path, path]) for path in read_only]
    mounts.append(("/tmp", 1, ["--perms", "1777", "--size", str(TEMPORARY_BYTES), "--tmpfs", "/tmp"]))
    mounts += [(root, 1, ["--size", str(COVER_BYTES), "--tmpfs", root]) for root in hidden
               if os.path.isdir(root) and any(within(root, path) for path in read_only)]
    mounts.append((sandbox, 0, ["--ro-bind", sandbox, sandbox]))
    tmpfs = [path for path, order, _ in mounts if order == 1]
    mounts += [(folder, 2, ["--perms", "0755", "--dir", folder])
               for folder in parents_to_make([*read_only, sandbox, LAUNCHER_IN_VIEW], [*read_only, sandbox], tmpfs)]
    mounts.sort(key=lambda mount: (mount[0].rstrip("/").count("/"), mount[1]))
    return ["--dev", "/dev", "--perms", "1777", "--size", str(SHARED_MEMORY_BYTES), "--tmpfs", "/dev/shm", "--proc", "/proc",
            *[argument for _, _, arguments in mounts for argument in arguments]]


def view_check(settings: dict, sandbox: str) -> dict:
    """What the launcher inside the view checks and sets: hidden and shown paths, limits (`slot`: the student's folder)."""
    hidden = settings["hide"]
    return {"hide": hidden, "shown": shown_inside_hidden(hidden, [*python_dirs(), sandbox]), "slot": sandbox,
            "memory_bytes": settings["memory_bytes"], "cpu_seconds": cpu_seconds(settings)}


def view_options(settings: dict, sandbox: str, *more: str) -> list[str]:
    """bwrap's options for the view of `sandbox`, with this file at LAUNCHER_IN_VIEW and `more` bwrap options (files
    to put in the view, before the view is made read-only): the per-kernel view and the zygote's alike."""
    return [
        *view_arguments(settings["hide"], python_dirs(), sandbox), *KERNEL_NAMESPACES,
        *(SWITCH_USER_CAPABILITIES if os.geteuid() == 0 else ()),
        "--ro-bind", os.path.abspath(__file__), LAUNCHER_IN_VIEW,
        # In its PID namespace the kernel's parent is bwrap, not nbgrader: ipykernel would take JPY_PARENT_PID's
        # absence for nbgrader having exited and stop, so --clearenv drops it too. --die-with-parent does that polling's job.
        "--clearenv", *kept_environment(os.environ),
        "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib",
        *more, "--remount-ro", "/dev", "--remount-ro", "/",
    ]


def start_in_view(settings: dict, kernel_args: list[str]) -> None:
    """Replace this process by bwrap, which runs this file again inside the view (INSIDE) to check it and start the kernel."""
    sandbox = settings["sandbox"]
    cwd = os.getcwd()
    if not within(cwd, sandbox):
        sys.exit(f"{SANDBOX_FAILED}: the kernel was to start in {cwd}, outside the student's folder {sandbox}")
    connection = kernel_args[kernel_args.index("-f") + 1]
    connection_fd = os.open(connection, os.O_RDONLY)
    arguments = [
        *view_options(settings, sandbox, "--perms", "0444", "--file", str(connection_fd), CONNECTION_GIVEN),
        "--chdir", cwd,
        "--", sys.executable, LAUNCHER_IN_VIEW, INSIDE, json.dumps(view_check(settings, sandbox)),
        *[CONNECTION_IN_VIEW if arg == connection else arg for arg in kernel_args],
    ]
    os.set_inheritable(connection_fd, True)
    # nbgrader interrupts a cell by sending SIGINT to the kernel's process group, which includes bwrap:
    # bwrap must ignore it (and so outlive it), the kernel gets its own handler back in run_kernel.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.execv(settings["bwrap"], [settings["bwrap"], *arguments])


def cpu_seconds(settings: dict) -> int:
    """The kernel's CPU time: CPU_TIMEOUTS_PER_KERNEL cells that each keep one core busy for the whole cell timeout."""
    return int(CPU_TIMEOUTS_PER_KERNEL * settings["timeout"])


def kept_environment(environment: dict[str, str]) -> list[str]:
    """bwrap's --setenv options for the variables student code may see (KEPT_VARIABLES, KEPT_PREFIXES)."""
    kept = sorted(name for name in environment if name in KEPT_VARIABLES or name.startswith(KEPT_PREFIXES))
    return [argument for name in kept for argument in ("--setenv", name, environment[name])]


def visible_hidden_paths(hidden: list[str], shown: list[str]) -> list[str]:
    """Files (and links) under the hidden folders that can be read here, other than the shown paths."""
    shown = {os.path.normpath(path) for path in shown}
    visible = []
    for root in map(os.path.normpath, hidden):
        if os.path.islink(root) or os.path.isfile(root):
            visible.append(root)
        for folder, subfolders, files in os.walk(root):  # a folder that cannot be listed is hidden too
            links = [name for name in subfolders if os.path.islink(os.path.join(folder, name))]
            visible += [os.path.join(folder, name) for name in files + links]
            subfolders[:] = [name for name in subfolders if name not in links and os.path.join(folder, name) not in shown]
    return visible


def check_view(hidden: list[str], shown: list[str]) -> None:
    """Exit with SANDBOX_FAILED if the view shows anything it should hide, or a network other than loopback."""
    problems = []
    visible = visible_hidden_paths(hidden, shown)
    if visible:
        more = f" and {len(visible) - 3} more" if len(visible) > 3 else ""
        problems.append(f"student code could read {', '.join(visible[:3])}{more}")
    networks = [name for _, name in socket.if_nameindex() if name != "lo"]
    if networks:
        problems.append(f"student code would have a network ({', '.join(networks)})")
    if problems:
        sys.exit(f"{SANDBOX_FAILED}: {'; '.join(problems)}")


def own_user_namespace(namespaces: int = 0) -> None:
    """Move this process to a user namespace of its own (owning `namespaces` too, CLONE_* flags), as KERNEL_UID if
    it runs as root, keeping its ids mapped.

    ctypes, because os.unshare is Python 3.12 and later. After setresuid the process is not
    dumpable, and its /proc files belong to root: PR_SET_DUMPABLE gives them back, to write its maps.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if os.getuid() == 0:
        os.setgroups([])
        os.setresgid(KERNEL_GID, KERNEL_GID, KERNEL_GID)
        os.setresuid(KERNEL_UID, KERNEL_UID, KERNEL_UID)
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | namespaces) != 0:
        raise OSError(ctypes.get_errno(), f"cannot create a user namespace: {os.strerror(ctypes.get_errno())}")
    for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)


def set_limits(memory_bytes: int, cpu_seconds: int) -> None:
    """Set the kernel's limits and check that they hold (OSError if not), in its own user namespace already."""
    # Soft CPU limit: SIGXCPU, which ends the kernel; the hard one (SIGKILL) in case something catches it.
    limits = {resource.RLIMIT_AS: (memory_bytes, memory_bytes), resource.RLIMIT_CPU: (cpu_seconds, cpu_seconds + 5),
              resource.RLIMIT_NPROC: (PROCESS_LIMIT, PROCESS_LIMIT), resource.RLIMIT_CORE: (0, 0)}
    for limit, values in limits.items():
        resource.setrlimit(limit, values)
    if os.getuid() == 0 or any(resource.getrlimit(limit) != values for limit, values in limits.items()):
        raise OSError("the kernel would run as root or without its limits, and Linux does not limit root's processes")


def limit_this_process(memory_bytes: int, cpu_seconds: int) -> None:
    """Move to a user namespace of its own and set the kernel's limits; SANDBOX_FAILED (exit) if one cannot be set."""
    try:
        own_user_namespace()
        set_limits(memory_bytes, cpu_seconds)
    except (OSError, ValueError) as error:
        sys.exit(f"{SANDBOX_FAILED}: the kernel's limits cannot be set up ({error})")


def write_own_connection(text: str) -> None:
    """Write the kernel's own copy of its connection file, a new file only it can read (ipykernel rewrites it)."""
    with open(os.open(CONNECTION_IN_VIEW, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as own:
        own.write(text)


def start_kernel(kernel_args: list[str]) -> None:
    """Replace this process by the kernel."""
    os.environ["MALLOC_ARENA_MAX"] = "2"
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *kernel_args, *KERNEL_OPTIONS])


def run_kernel(memory_bytes: int, cpu_seconds: int, kernel_args: list[str]) -> None:
    """Start the kernel with its limits as a child, wait for it, and say so on stderr if it was stopped for its CPU time.

    RLIMIT_AS counts address space, and glibc reserves 64 MiB of it for each thread that
    allocates (about 1 GiB for TensorFlow's threads, barely used): with two arenas the cap
    measures what the code uses, and the reference ResNet50 stays well under 3 GiB.
    """
    kernel = os.fork()
    if kernel == 0:
        limit_this_process(memory_bytes, cpu_seconds)
        with open(CONNECTION_GIVEN) as given:
            write_own_connection(given.read())
        start_kernel(kernel_args)
    _, status, usage = os.wait4(kernel, 0)
    sys.exit(kernel_exit_code(status, usage, cpu_seconds))


def kernel_exit_code(status: int, usage: resource.struct_rusage, cpu_seconds: int) -> int:
    """The ended kernel's exit code (128 + signal), after saying on stderr whether a limit stopped it."""
    stopped_by = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    used = usage.ru_utime + usage.ru_stime
    # SIGKILL comes from the hard limit, 5 s past the soft one, or from elsewhere (the OOM killer): it needs the whole limit
    if (stopped_by == signal.SIGXCPU and used >= cpu_seconds * LIMIT_SHARE_SEEN) or (stopped_by == signal.SIGKILL and used >= cpu_seconds):
        print(f"{LIMIT_REACHED}: the kernel was stopped after {cpu_seconds} s of CPU time", file=sys.stderr, flush=True)
    elif status and len(glob.glob("/proc/[0-9]*/task/[0-9]*")) >= PROCESS_LIMIT // 2:  # the bomb's processes outlive it
        print(f"{LIMIT_REACHED}: the kernel ended with its processes at the limit of {PROCESS_LIMIT}", file=sys.stderr, flush=True)
    return os.waitstatus_to_exitcode(status) if stopped_by is None else 128 + stopped_by


def main() -> None:
    if sys.argv[1] == INSIDE:
        check = json.loads(sys.argv[2])
        check_view(check["hide"], check["shown"])
        return run_kernel(check["memory_bytes"], check["cpu_seconds"], sys.argv[3:])
    with open(sys.argv[1]) as file:
        settings = json.load(file)
    if settings.get("container"):  # --container-sandbox: no view, kernel users (tools/grading/container_sandbox.py)
        sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit, to import it
        from tools.grading.container_sandbox import run_kernel_as_user
        return run_kernel_as_user(settings, sys.argv[2:])
    if settings["isolated"] and os.environ.get(ZYGOTE_VARIABLE):  # the worker's zygote starts kernels faster
        from kernel_zygote import stand_for_kernel  # beside this file
        return stand_for_kernel(os.environ[ZYGOTE_VARIABLE], sys.argv[2:])
    if settings["isolated"]:
        return start_in_view(settings, sys.argv[2:])
    resource.setrlimit(resource.RLIMIT_AS, (settings["memory_bytes"], settings["memory_bytes"]))
    return start_kernel(sys.argv[2:])


if __name__ == "__main__":
    main()
