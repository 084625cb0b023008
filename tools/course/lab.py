"""Open the course in JupyterLab: `python -m tools.course.lab [--edition zh] [jupyter options]` (what `make lab` runs).

JupyterLab runs with this very interpreter, so it finds the kit's kernel, `resnets-kit`, in
this environment. It serves the kit's folder, not only `notebooks/`, because the notebooks
show pictures from `../images/`, which Jupyter cannot serve from outside the folder it
serves; the link it prints opens `notebooks/`. Jupyter refuses to start as root unless told
`--allow-root`; containers and CI machines often run as root, so the kit says it for root
only. Other options go to Jupyter as they are; `--ServerApp.root_dir=DIR` serves another folder.

A photo uploaded in notebook 5 reaches the kernel as one websocket message, and Jupyter's
server (Tornado) takes at most 10 MiB per message: a phone photo over that size would just
drop the notebook's connection, with no message to the student. The lab raises the limit to
UPLOAD_LIMIT_MB.

`--edition zh` opens the Chinese notebooks (`notebooks/zh/`) with JupyterLab's own menus in
Chinese: its language pack is installed with the kit, and the edition's settings folder
(`tools/course/lab_settings/zh/overrides.json`) makes Chinese the default for this lab only; a
student's own choice in Settings > Language still wins.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from jupyterlab.labapp import LabApp

from resnets_utils import KIT_DIR
from tools.course.notebook_source import NOTEBOOKS

FIRST_PAGE = f"/lab/tree/{NOTEBOOKS.relative_to(KIT_DIR).as_posix()}"
UPLOAD_LIMIT_MB = 64
EDITIONS = ("en", "zh")
EDITION_SETTINGS = Path(__file__).with_name("lab_settings")


def first_page(edition: str = "en") -> str:
    return FIRST_PAGE if edition == "en" else f"{FIRST_PAGE}/{edition}"


def jupyter_arguments(options: list[str], as_root: bool, edition: str = "en") -> list[str]:
    # As JSON, the value reaches Tornado as a number; traitlets' key=value form would make it a string.
    large_messages = json.dumps({"websocket_max_message_size": UPLOAD_LIMIT_MB * 1024 * 1024})
    language = [] if edition == "en" else [f"--LabApp.app_settings_dir={EDITION_SETTINGS / edition}"]
    return [f"--LabApp.default_url={first_page(edition)}", f"--ServerApp.tornado_settings={large_messages}",
            *language, *(["--allow-root"] if as_root else []), *options]


def main(arguments: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--edition", choices=EDITIONS, default="en", help="the course's language: en, or zh for Chinese")
    known, options = parser.parse_known_args(arguments)
    edition = known.edition
    as_root = os.geteuid() == 0
    print(
        f"Starting JupyterLab on the course{' (as root, so with --allow-root)' if as_root else ''}. "
        f"When it is ready, it prints a link like http://127.0.0.1:8888{first_page(edition)}?token=... : "
        "open that link in your browser. Ctrl-C stops JupyterLab.",
        flush=True,
    )
    os.chdir(KIT_DIR)  # Jupyter serves the folder it starts in, unless told another one
    LabApp.launch_instance(jupyter_arguments(options, as_root, edition))


if __name__ == "__main__":
    main(sys.argv[1:])
