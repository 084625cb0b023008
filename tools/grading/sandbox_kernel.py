"""Start the kernel that runs one student's code while it is graded.

The grader's kernelspec calls `python tools/grading/sandbox_kernel.py SETTINGS.json -f CONNECTION_FILE`.
With SETTINGS["isolated"], the kernel starts inside a view of the filesystem that bubblewrap
(`bwrap`, SETTINGS["bwrap"]) builds from an empty root, holding only what the kernel needs:
the system's /usr and /etc and this Python installation, read-only; an empty, capped /tmp; the
connection file; and the student's folder SETTINGS["sandbox"], read-write, as the working
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
to it over ZMQ. Memory is capped at SETTINGS["memory_bytes"] (RLIMIT_AS).

Run as a file, not a module: inside the view only this file is shown (at LAUNCHER_IN_VIEW),
and it imports nothing but the standard library.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sys

SANDBOX_FAILED = "GRADER SANDBOX FAILED"
INSIDE = "--inside-view"
LAUNCHER_IN_VIEW = "/run/grader/sandbox_kernel.py"
CONNECTION_IN_VIEW = "/tmp/kernel-connection.json"
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What student code may write outside its folder is in memory (tmpfs), so it is capped; the rest of the view is read-only.
TEMPORARY_BYTES, SHARED_MEMORY_BYTES, COVER_BYTES = 512 * 2**20, 64 * 2**20, 2**20
# Its own processes (a /proc without nbgrader's /proc/PID/root, a way round the view), IPC and host name,
# no capabilities; it dies with its launcher.
KERNEL_NAMESPACES = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                     "--die-with-parent", "--cap-drop", "ALL")


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


def view_arguments(hidden: list[str], python: list[str], sandbox: str) -> list[str]:
    """bwrap's mount options, parents before children, so that a cover comes after what it covers and before what it shows again."""
    system = [path for path in SYSTEM_DIRS if os.path.isdir(path) and not os.path.islink(path)]
    read_only = system + python
    mounts = [(path, 0, ["--symlink", os.readlink(path), path]) for path in SYSTEM_DIRS if os.path.islink(path)]
    mounts += [(path, 0, ["--ro-bind", path, path]) for path in read_only]
    mounts.append(("/tmp", 1, ["--size", str(TEMPORARY_BYTES), "--tmpfs", "/tmp"]))
    mounts += [(root, 1, ["--size", str(COVER_BYTES), "--tmpfs", root]) for root in hidden
               if os.path.isdir(root) and any(within(root, path) for path in read_only)]
    mounts.append((sandbox, 0, ["--bind", sandbox, sandbox]))
    mounts.sort(key=lambda mount: (mount[0].rstrip("/").count("/"), mount[1]))
    return ["--dev", "/dev", "--size", str(SHARED_MEMORY_BYTES), "--tmpfs", "/dev/shm", "--proc", "/proc",
            *[argument for _, _, arguments in mounts for argument in arguments]]


def start_in_view(settings: dict, kernel_args: list[str]) -> None:
    """Replace this process by bwrap, which runs this file again inside the view (INSIDE) to check it and start the kernel."""
    sandbox, hidden = settings["sandbox"], settings["hide"]
    cwd = os.getcwd()
    if not within(cwd, sandbox):
        sys.exit(f"{SANDBOX_FAILED}: the kernel was to start in {cwd}, outside the student's folder {sandbox}")
    python = python_dirs()
    check = {"hide": hidden, "shown": shown_inside_hidden(hidden, [*python, sandbox]), "memory_bytes": settings["memory_bytes"]}
    connection = kernel_args[kernel_args.index("-f") + 1]
    connection_fd = os.open(connection, os.O_RDONLY)
    arguments = [
        *view_arguments(hidden, python, sandbox), *KERNEL_NAMESPACES,
        "--ro-bind", os.path.abspath(__file__), LAUNCHER_IN_VIEW,
        "--file", str(connection_fd), CONNECTION_IN_VIEW,
        "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib",
        # In its PID namespace the kernel's parent is bwrap, not nbgrader: ipykernel would take that for nbgrader
        # having exited and stop. --die-with-parent does that polling's job.
        "--unsetenv", "JPY_PARENT_PID",
        "--remount-ro", "/dev", "--remount-ro", "/",
        "--chdir", cwd,
        "--", sys.executable, LAUNCHER_IN_VIEW, INSIDE, json.dumps(check),
        *[CONNECTION_IN_VIEW if arg == connection else arg for arg in kernel_args],
    ]
    os.set_inheritable(connection_fd, True)
    # nbgrader interrupts a cell by sending SIGINT to the kernel's process group, which includes bwrap:
    # bwrap must ignore it (and so outlive it), the kernel gets its own handler back in run_kernel.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.execv(settings["bwrap"], [settings["bwrap"], *arguments])


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


def run_kernel(memory_bytes: int, kernel_args: list[str]) -> None:
    """Cap the kernel's memory and start it.

    RLIMIT_AS counts address space, and glibc reserves 64 MiB of it for each thread that
    allocates (about 1 GiB for TensorFlow's threads, barely used): with two arenas the cap
    measures what the code uses, and the reference ResNet50 stays well under 3 GiB.
    """
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    os.environ["MALLOC_ARENA_MAX"] = "2"
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *kernel_args,
                              "--IPKernelApp.capture_fd_output=False", "--HistoryManager.hist_file=:memory:"])


def main() -> None:
    if sys.argv[1] == INSIDE:
        check = json.loads(sys.argv[2])
        check_view(check["hide"], check["shown"])
        return run_kernel(check["memory_bytes"], sys.argv[3:])
    with open(sys.argv[1]) as file:
        settings = json.load(file)
    if settings["isolated"]:
        return start_in_view(settings, sys.argv[2:])
    return run_kernel(settings["memory_bytes"], sys.argv[2:])


if __name__ == "__main__":
    main()
