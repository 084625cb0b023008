"""Open the course in JupyterLab: `python -m tools.course.lab [jupyter options]` (what `make lab` runs).

JupyterLab runs with this very interpreter, so it finds the kit's kernel, `resnets-kit`, in
this environment. It serves the kit's folder, not only `notebooks/`, because the notebooks
show pictures from `../images/`, which Jupyter cannot serve from outside the folder it
serves; the link it prints opens `notebooks/`. Jupyter refuses to start as root unless told
`--allow-root`; containers and CI machines often run as root, so the kit says it for root
only. Other options go to Jupyter as they are; `--ServerApp.root_dir=DIR` serves another folder.
"""

from __future__ import annotations

import os
import sys

from jupyterlab.labapp import LabApp

from resnets_utils import KIT_DIR
from tools.course.notebook_source import NOTEBOOKS

FIRST_PAGE = f"/lab/tree/{NOTEBOOKS.relative_to(KIT_DIR).as_posix()}"


def jupyter_arguments(options: list[str], as_root: bool) -> list[str]:
    return [f"--LabApp.default_url={FIRST_PAGE}", *(["--allow-root"] if as_root else []), *options]


def main(options: list[str]) -> None:
    as_root = os.geteuid() == 0
    print(
        f"Starting JupyterLab on the course{' (as root, so with --allow-root)' if as_root else ''}. "
        f"When it is ready, it prints a link like http://127.0.0.1:8888{FIRST_PAGE}?token=... : "
        "open that link in your browser. Ctrl-C stops JupyterLab.",
        flush=True,
    )
    os.chdir(KIT_DIR)  # Jupyter serves the folder it starts in, unless told another one
    LabApp.launch_instance(jupyter_arguments(options, as_root))


if __name__ == "__main__":
    main(sys.argv[1:])
