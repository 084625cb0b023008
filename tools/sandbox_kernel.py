"""Start the kernel that runs one student's code while it is graded.

The grader's kernelspec calls `python tools/sandbox_kernel.py SETTINGS.json -f CONNECTION_FILE`.
Before the kernel starts, it enters a private mount namespace in which every path of
SETTINGS["hide"] (the source notebooks, the gradebook with the hidden tests, the kit's
history, other students' work) is covered by an empty, unreadable directory, the temporary
folder (where every grading run lives) is replaced by an empty one holding only this
student's SETTINGS["sandbox"], and caps the kernel's memory at SETTINGS["memory_bytes"]. The grading worker that starts it already has
no network (see tools/grade.py). Run as a file, not a module, so that it imports nothing
from the folders it hides.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

STAGE = "RESNETS_SANDBOX_STAGE"


def hide(paths: list[str]) -> None:
    """Cover each path: an empty mode-000 tmpfs over a folder, /dev/null over a file."""
    for path in paths:
        if os.path.isdir(path):
            command = ["mount", "-t", "tmpfs", "-o", "size=64k,mode=000", "tmpfs", path]
        elif os.path.exists(path):
            command = ["mount", "--bind", "/dev/null", path]
        else:
            continue
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def private_temporary_folder(temporary: str, sandbox: str, kernel_args: list[str]) -> list[str]:
    """Cover `temporary` with an empty tmpfs, then bring back only `sandbox` (and the connection file)."""
    connection = kernel_args[kernel_args.index("-f") + 1]
    with open(connection) as file:
        connection_text = file.read()
    cwd = os.getcwd()
    kept = os.open(sandbox, os.O_RDONLY | os.O_DIRECTORY)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m,mode=1777", "tmpfs", temporary], check=True)
    os.makedirs(sandbox)
    subprocess.run(["mount", "--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{kept}", sandbox], check=True, pass_fds=(kept,))
    os.close(kept)
    os.chdir(cwd)  # the same path, now inside the new mounts
    copy = os.path.join(temporary, "kernel-connection.json")
    with open(copy, "w") as file:
        file.write(connection_text)
    os.environ["MPLCONFIGDIR"] = os.path.join(temporary, "matplotlib")
    return [copy if arg == connection else arg for arg in kernel_args]


def main() -> None:
    settings_file, kernel_args = sys.argv[1], sys.argv[2:]
    with open(settings_file) as file:
        settings = json.load(file)
    if settings["hide"] and os.environ.get(STAGE) != "inside":
        # Re-run this script in a new mount namespace (as root there, in a user namespace if need be).
        user_namespace = [] if os.geteuid() == 0 else ["--map-root-user"]
        os.environ[STAGE] = "inside"
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", *user_namespace,
                              sys.executable, __file__, settings_file, *kernel_args])
    if settings["hide"] and settings["temporary"]:
        kernel_args = private_temporary_folder(settings["temporary"], settings["sandbox"], kernel_args)
        hide(settings["hide"])
    memory = settings["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *kernel_args,
                              "--IPKernelApp.capture_fd_output=False", "--HistoryManager.hist_file=:memory:"])


if __name__ == "__main__":
    main()
