"""`make lab` starts JupyterLab on the course, as root too, and says which link to open."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from resnets_utils import KIT_DIR
from tools.course.lab import FIRST_PAGE, UPLOAD_LIMIT_MB, jupyter_arguments

STARTUP_TIMEOUT = 120  # seconds; JupyterLab needs about 5 on an idle 2-core machine


@dataclass(frozen=True)
class Lab:
    address: str  # http://127.0.0.1:PORT
    link: str  # the link the lab printed for the user, with its token
    token: str
    log: Path  # everything the lab and its kernels wrote to the terminal

    def api(self, path: str, method: str = "GET"):
        """Jupyter's REST API (`/api/PATH`, or JupyterLab's when PATH starts with /): what it answers, as JSON (None when it answers nothing)."""
        request = urllib.request.Request(f"{self.address}{path if path.startswith('/') else '/api/' + path}", method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepts_connections(port: int) -> bool:
    with socket.socket() as client:
        return client.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_lab(scratch: Path, *jupyter_options: str) -> Iterator[Lab]:
    """JupyterLab started the way `make lab` starts it, headless on a free port, until the block ends.

    The token is the one Jupyter makes up, read from the link it prints, as a user reads it.
    Jupyter's settings, workspaces and runtime files live in `scratch`, so neither the
    user's own settings nor what a test opens carry over; the one setting made there keeps
    JupyterLab from asking, in a pop-up over the notebook, whether to fetch Jupyter's news.
    """
    news_setting = scratch / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news_setting.parent.mkdir(parents=True, exist_ok=True)
    news_setting.write_text(json.dumps({"fetchNews": "false"}))
    port = free_port()
    log = scratch / "jupyterlab.log"
    environment = {**os.environ, "JUPYTER_CONFIG_DIR": str(scratch / "config"), "JUPYTER_RUNTIME_DIR": str(scratch / "runtime")}
    command = [sys.executable, "-m", "tools.course.lab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0", *jupyter_options]
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=KIT_DIR, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        printed_link = re.compile(rf"http://127\.0\.0\.1:{port}/\S*\?token=(\w+)")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        # Jupyter Server prints the link before its event loop binds the port: until then a request is refused.
        while not ((found := printed_link.search(log.read_text(errors="replace"))) and accepts_connections(port)):
            if process.poll() is not None or time.monotonic() > deadline:
                problem = "printed no link to open" if not found else f"printed its link but never listened on port {port}"
                raise AssertionError(f"JupyterLab {problem} (exit code {process.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield Lab(f"http://127.0.0.1:{port}", found.group(0), found.group(1), log)
    finally:
        process.terminate()  # Jupyter shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_make_lab_allows_root_only_for_root():
    assert "--allow-root" in jupyter_arguments([], as_root=True)
    assert "--allow-root" not in jupyter_arguments([], as_root=False)


def test_make_lab_lets_phone_photos_through_the_upload_button():
    """Jupyter reads the setting as Tornado needs it: a number of bytes above Tornado's 10 MiB default, not a string."""
    from jupyter_server.serverapp import ServerApp

    server = ServerApp()
    server.parse_command_line(jupyter_arguments([], as_root=False))
    assert server.tornado_settings["websocket_max_message_size"] == UPLOAD_LIMIT_MB * 2**20 > 10 * 2**20


def test_make_lab_prints_the_link_to_the_notebooks_and_offers_the_kit_kernel(tmp_path):
    with running_lab(tmp_path) as lab:
        printed = lab.log.read_text()
        assert printed.startswith("Starting JupyterLab on the course"), printed[:300]
        assert lab.link.startswith(f"{lab.address}{FIRST_PAGE}?token=")
        assert "resnets-kit" in lab.api("kernelspecs")["kernelspecs"]
        served = {item["name"] for item in lab.api("contents/notebooks")["content"]}
        assert {path.name for path in (KIT_DIR / "notebooks").glob("*.ipynb")} <= served
        assert lab.api("contents/images")["type"] == "directory", "the notebooks' ../images/ links need the kit's folder served"


def test_make_lab_edition_zh_opens_the_chinese_notebooks_with_jupyterlab_in_chinese(tmp_path):
    with running_lab(tmp_path, "--edition", "zh") as lab:
        assert lab.link.startswith(f"{lab.address}{FIRST_PAGE}/zh?token=")
        served = {item["name"] for item in lab.api("contents/notebooks/zh")["content"]}
        assert {path.name for path in (KIT_DIR / "notebooks" / "zh").glob("*.ipynb")} <= served
        assert "zh_CN" in lab.api("/lab/api/translations")["data"], "JupyterLab's Chinese language pack should be installed"
        settings = lab.api("/lab/api/settings/@jupyterlab/translation-extension:plugin")
        chosen = settings["settings"].get("locale", settings["schema"]["properties"]["locale"]["default"])
        assert chosen == "zh_CN", settings["settings"]
        assert lab.api("/lab/api/translations/zh_CN")["data"], "the language pack should translate JupyterLab's menus"
