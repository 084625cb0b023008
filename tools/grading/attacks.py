"""A red-team catalogue: student code that attacks the grader, each attack the reference solution
with the attack written before it, in the identity block's solution cell of notebook 2.

Each attack raises when the protection holds, so a submission earns the identity block's
points only if its attack works; `reasons` are the words the grade row must then show (one of
them). The attacker is assumed to know where the instructor keeps the kit, the submissions and
the grades (they are guessable), and that the kernel's working folder is
`RUN/<worker's zygote>/slot/<student>/<assignment>` (it is, and the kernel can see it).
tests/test_grading_red_team.py grades all of them in one run, next to the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tools.course.notebook_source import BLOCKS_NOTEBOOK, solution_source
from tools.grading.nbgrader_course import ASSIGNMENT

ATTACKED_CELL = "identity_block"  # the solution cell each attack goes into
# The kernel's working folder is RUN/<zygote>/slot/<student>/<assignment>: what the attacks derive their targets from.
WHERE = "from pathlib import Path\nhere = Path.cwd()\nme, run = here.parent.name, here.parents[3]\n"
SECRET_VARIABLE = "RESNETS_RED_TEAM_SECRET"  # the test sets it in the grader's environment, as a CI token would be


@dataclass(frozen=True)
class Attack:
    name: str
    tries: str  # what the attack tries to do
    code: str  # runs before the reference solution; raises when the protection holds
    reasons: tuple[str, ...]  # one of these must be in the attacked cell's grade row
    notebook: Path = BLOCKS_NOTEBOOK
    grade_id: str = ATTACKED_CELL

    def source(self) -> str:
        """The attacked solution cell: the attack, then the reference solution."""
        return f"{self.code}\n{solution_source(self.grade_id, self.notebook)}"


def catalogue(kit: Path, submissions: Path, out: Path, victim: str) -> list[Attack]:
    """The attacks, aimed at this kit, these submissions, this output folder and the student `victim`."""
    grades, victim_page = out / "grades.csv", out / "feedback" / victim / f"{BLOCKS_NOTEBOOK.stem}.html"
    return [
        # The attacks tests/test_grading.py and tests/test_grading_sandbox.py already try, one by one.
        Attack("loops forever", "hold the grader forever", "while True:\n    pass", ("stopped after",)),
        Attack("kills its kernel", "end the grading of its notebook early", "import os\nos._exit(1)", ("kernel died",)),
        Attack("hogs memory", "take the machine's memory", "hog = [bytearray(2**30) for _ in range(64)]", ("MemoryError",)),
        Attack("replaces np.allclose", "make every comparison of the tests pass",
               "np.allclose = lambda *args, **kwargs: True", ("it assigns to np.allclose",)),
        Attack("copies the solution from the kit", "read the source notebooks, which hold the solutions",
               f"import resnets_utils\nresnets_utils.functions_from({str(kit / 'notebooks' / BLOCKS_NOTEBOOK.name)!r}, 'identity_block')",
               ("NotebookError",)),
        Attack("opens its gradebook", "read the hidden tests' results in its gradebook",
               f"{WHERE}open(run / me / 'course' / 'gradebook.db', 'rb')", ("No such file or directory",)),
        Attack("uses the network", "send the notebook out, or fetch answers",
               "import socket\nsocket.create_connection(('1.1.1.1', 443), timeout=5)", ("Network is unreachable",)),
        # Processes, CPU, disk.
        Attack("fork bomb", "fill the machine with processes",
               "import os, time\nwhile True:\n    if os.fork() == 0:\n        try:\n            while True:\n                os.fork()\n"
               "        finally:\n            time.sleep(5)\n            os._exit(0)",
               ("process limit", "processes at the limit")),  # the cell's BlockingIOError, or the kernel ended with its processes at the limit
        Attack("burns CPU, deaf to interrupts", "keep a core busy after the cell's time is up",
               "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nburn = np.ones((1500, 1500))\nwhile True:\n    burn @ burn",
               # nbgrader gives up on the notebook when the interrupt brings no reply, and stops the kernel before its CPU
               # time runs out (the CPU limit's own test: tests/test_grading_red_team.py).
               ("took too long", "s of CPU time")),
        Attack("fills the disk", "write until the grader's disk is full",
               "chunk = b'x' * 2**24\nwith open('filler.bin', 'wb') as filler:\n    for _ in range(2**12):\n        filler.write(chunk)",
               ("Read-only file system",)),
        Attack("fills /tmp", "use the temporary folder to fill the disk or the memory",
               "chunk = b'x' * 2**24\nwith open('/tmp/filler.bin', 'wb') as filler:\n    for _ in range(2**8):\n        filler.write(chunk)",
               ("No space left on device",)),
        Attack("fills /dev/shm", "use shared memory to fill the memory",
               "chunk = b'x' * 2**24\nwith open('/dev/shm/filler.bin', 'wb') as filler:\n    for _ in range(2**8):\n        filler.write(chunk)",
               ("No space left on device",)),
        # The grader's processes.
        Attack("signals the grader", "kill the process that started its kernel",
               # The kernel's parent is the init of its PID namespace, which a signal from inside cannot kill.
               "import os, signal, time\nparent = os.getppid()\nos.kill(parent, signal.SIGKILL)\ntime.sleep(1)\n"
               "if os.getppid() == parent:\n    raise ProcessLookupError('the kernel\\'s parent survived SIGKILL')",
               ("Operation not permitted", "kernel died", "survived SIGKILL")),
        Attack("finds the grader in /proc", "read nbgrader's command line, which names the grading run",
               "import glob\nnext(path for path in glob.glob('/proc/[0-9]*/cmdline') if b'nbgrader' in open(path, 'rb').read())",
               ("StopIteration",)),
        Attack("reads other students through /proc", "look at the files of the sandbox's first process, then at other students'",
               f"{WHERE}import os\nos.listdir(f'/proc/1/root{{run}}')", ("Permission denied", "No such file or directory")),
        Attack("reads the environment", "find the grader's secrets (CI tokens) in its environment variables",
               f"import os\nos.environ[{SECRET_VARIABLE!r}]", (f"KeyError: '{SECRET_VARIABLE}'",)),
        Attack("learns where the grading runs", "read JUPYTER_PATH, which names the student's grading folder",
               "import os\nos.environ['JUPYTER_PATH']", ("KeyError: 'JUPYTER_PATH'",)),
        Attack("becomes root", "take back the privileges the sandbox dropped", "import os\nos.setuid(0)",
               ("Invalid argument",)),  # its user namespace maps no root
        Attack("remounts its folder read-write", "undo the read-only folder from a user namespace of its own",
               "import os, subprocess\nsubprocess.run(['unshare', '--user', '--map-root-user', '--mount', 'sh', '-c', "
               "f'mount -o remount,bind,rw {os.getcwd()} && touch {os.getcwd()}/planted'], check=True)",
               ("CalledProcessError",)),
        # Grades and feedback, its own and others'.
        Attack("writes its own results", "write the scores the grader collects for it",
               f"{WHERE}(run / me / 'results.json').write_text('{{}}')", ("Permission denied", "No such file or directory")),
        Attack("writes another student's results", f"write the scores the grader collects for {victim}",
               f"{WHERE}(run / {victim!r} / 'results.json').write_text('{{}}')", ("No such file or directory",)),
        Attack("writes grades.csv", "write the class's grades",
               f"open({str(grades)!r}, 'a').write('{victim},x,identity_block_hidden,0,3,failed,\\n')", ("No such file or directory",)),
        Attack("writes another student's feedback", f"replace {victim}'s feedback page",
               f"open({str(victim_page)!r}, 'w').write('<h1>0 points</h1>')", ("No such file or directory",)),
        Attack("rewrites its graded notebook", "replace the notebook nbgrader writes and makes the feedback from",
               f"open({BLOCKS_NOTEBOOK.name!r}, 'w').write('{{}}')", ("Read-only file system",)),
        Attack("plants a link", "make nbgrader's write of its graded notebook land on grades.csv",
               f"import os\nos.symlink({str(grades)!r}, 'planted.ipynb')", ("Read-only file system",)),
        Attack("writes its gradebook", "give itself the points in the gradebook",
               f"{WHERE}import sqlite3\nsqlite3.connect(run / me / 'course' / 'gradebook.db').execute('select 1')",
               ("unable to open database file",)),
        Attack("reads the hidden tests", "read the source notebook of the grading run, which holds the hidden tests",
               f"{WHERE}open(run / 'master' / 'source' / {ASSIGNMENT!r} / {BLOCKS_NOTEBOOK.name!r}).read()", ("No such file or directory",)),
        Attack("reads another student's submission", f"copy {victim}'s notebook",
               f"open({str(submissions / victim / BLOCKS_NOTEBOOK.name)!r}).read()", ("No such file or directory",)),
    ]
