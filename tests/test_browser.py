"""Every notebook runs to the end in JupyterLab, the way a student runs it, with no error.

The lab is started as `make lab` starts it; headless Chromium, driven by Playwright, opens
each notebook, checks that its kernel starts, clears the outputs and runs JupyterLab's own
"Restart Kernel and Run All Cells", then reads every cell's outputs from the notebook the
page holds. The lab serves a copy of the kit in a temporary folder, so nothing the UI
saves reaches `notebooks/` (whose stored outputs nbval compares). The same happens for the
student release with the reference solutions written in, for each notebook whose code there
differs from the source's. After notebook 5 has run, a phone-sized whole photo of a hand in
a room is uploaded in it, and the hand found and read, as a student does. The Chinese edition runs in a lab
started as `make lab EDITION=zh` starts it, with JupyterLab's menus in Chinese. A screenshot of each notebook goes
to `build/browser/`.

Without Chromium (`/usr/bin/chromium`) or Playwright these tests skip; with
RESNETS_REQUIRE_BROWSER=1, as CI sets it, they fail instead.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from resnets_utils import KIT_DIR, _code_sources  # the code cells, as functions_from reads them
from tests.test_lab import Lab, running_lab
from tools.grading.mutations import fill_in, reference_solutions
from tools.grading.nbgrader_course import build_course, source_notebooks

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
# No network here: nothing that phones home, and no GPU in a headless CI machine.
CHROMIUM_OPTIONS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
KERNEL_START_TIMEOUT = 120_000  # milliseconds
NOTEBOOK_TIMEOUT = 600_000  # milliseconds; the slowest notebook takes about 1.5 min on a 2-core CPU
SCREENSHOTS = KIT_DIR / "build" / "browser"
KIT_LAYOUT = ("notebooks", "images", "datasets", "models")  # so that a ../ path in a notebook finds the same file
NOTEBOOK_NAMES = [path.name for path in source_notebooks()]
# The Chinese notebooks' code is the English code with the kit's language set: those that train (1 and 4) run the
# English run's code again, so only the others run here.
CHINESE_NOTEBOOK_NAMES = [path.name for path in source_notebooks("zh") if not path.name.startswith(("01_", "04_"))]
ANSWER = {"en": "The answer: a {digit}", "zh": "答案：{digit}（把握"}  # what notebook 5 prints for an upload
UPLOAD_NOTEBOOK = "05_your_own_image.ipynb"

# JavaScript run in the page, on JupyterLab's application object (exposed by --LabApp.expose_app_in_browser).
OPEN_DIALOG = "() => document.querySelector('.jp-Dialog')?.innerText ?? null"
KERNEL_READY_OR_DIALOG = """(path) => {
    const dialog = document.querySelector('.jp-Dialog');
    if (dialog) return {dialog: dialog.innerText};
    const panel = window.jupyterapp?.shell.currentWidget;
    const session = panel?.context?.path === path ? panel.sessionContext : null;
    const kernel = session?.session?.kernel;
    if (!kernel || !['idle', 'dead'].includes(kernel.status)) return null;
    return {kernel: kernel.name, status: kernel.status};
}"""
START_RUN_ALL = """() => {
    const commands = window.jupyterapp.commands;
    return commands.execute('notebook:clear-all-cell-outputs').then(() => { commands.execute('notebook:restart-run-all'); });
}"""
# Done: the kernel idle, no cell queued or running (no [*] prompt), and a cell run since the
# outputs were cleared, for two seconds in a row; or a dialog, such as "the kernel died", that needs a person.
RUN_FINISHED = """() => {
    if (document.querySelector('.jp-Dialog')) return true;
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = Array.from({length: panel.content.model.cells.length}, (_, i) => panel.content.model.cells.get(i));
    const settled = panel.sessionContext.session?.kernel?.status === 'idle'
        && cells.every(cell => cell.type !== 'code' || cell.executionState !== 'running')
        && cells.some(cell => cell.type === 'code' && cell.executionCount !== null);
    window.settledSince = settled ? (window.settledSince ?? Date.now()) : undefined;
    return settled && Date.now() - window.settledSince > 2000;
}"""
NOTEBOOK_JSON = "() => window.jupyterapp.shell.currentWidget.content.model.toJSON()"
BROKEN_PICTURES = """() => Array.from(document.querySelectorAll('.jp-Notebook img'))
    .filter(picture => picture.complete && picture.naturalWidth === 0).map(picture => picture.getAttribute('src'))"""
PICTURES_LOADED = "() => Array.from(document.querySelectorAll('.jp-Notebook img')).every(picture => picture.complete)"
SHOW_LAST_CODE_CELL = """async () => {
    const notebook = window.jupyterapp.shell.currentWidget.content;
    const last = notebook.widgets.findLastIndex(cell => cell.model.type === 'code');
    notebook.activeCellIndex = last;
    await notebook.scrollToItem(last, 'center');
}"""

SHOW_CELL_STARTING_WITH = """async (start) => {
    const notebook = window.jupyterapp.shell.currentWidget.content;
    const index = notebook.widgets.findIndex(cell => cell.model.sharedModel.getSource().startsWith(start));
    if (index >= 0) {
        notebook.activeCellIndex = index;
        await notebook.scrollToItem(index, 'start');
    }
    return index;
}"""


@dataclass(frozen=True)
class ServedFolder:
    lab: Lab
    root: Path  # the folder the lab serves


def unavailable(reason: str):
    """Skip, or fail where the browser test is required (CI), so that CI never silently lacks it."""
    if os.environ.get("RESNETS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and RESNETS_REQUIRE_BROWSER=1 requires the browser test")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as playwright:
        # Playwright starts Chromium without its sandbox, which root and many containers cannot use.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), chromium_sandbox=False, args=CHROMIUM_OPTIONS)
        yield browser
        browser.close()


def served(root: Path, tmp_path_factory):
    """The lab serving `root` until the module's tests are done."""
    with running_lab(tmp_path_factory.mktemp("jupyter"), f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True") as lab:
        yield ServedFolder(lab, root)


@pytest.fixture(scope="module")
def kit_copy(chromium, tmp_path_factory) -> ServedFolder:
    """The lab serving a copy of the kit's notebooks with the folders they read, in the kit's layout."""
    copy = tmp_path_factory.mktemp("kit")
    for name in KIT_LAYOUT:
        shutil.copytree(KIT_DIR / name, copy / name, ignore=shutil.ignore_patterns(".*"))
    yield from served(copy, tmp_path_factory)


@pytest.fixture(scope="module")
def kit_copy_zh(chromium, tmp_path_factory) -> ServedFolder:
    """The lab serving a copy of the kit, started as `make lab EDITION=zh` starts it."""
    import subprocess

    if not subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout.strip():
        unavailable("no Chinese font is installed, so Chromium would show the Chinese notebooks as boxes "
                    "(apt-get install fonts-wqy-microhei)")
    copy = tmp_path_factory.mktemp("kit-zh")
    for name in KIT_LAYOUT:
        shutil.copytree(KIT_DIR / name, copy / name, ignore=shutil.ignore_patterns(".*"))
    with running_lab(tmp_path_factory.mktemp("jupyter-zh"), "--edition", "zh", f"--ServerApp.root_dir={copy}",
                     "--LabApp.expose_app_in_browser=True") as lab:
        yield ServedFolder(lab, copy)


@pytest.fixture(scope="module")
def solved_release(chromium, tmp_path_factory) -> ServedFolder:
    """The lab serving the student release (as `make release` writes it) with the reference solutions written in."""
    release = build_course(tmp_path_factory.mktemp("course") / "course")
    for path in release.glob("*.ipynb"):
        nbformat.write(fill_in(path, reference_solutions()), path)
    yield from served(release, tmp_path_factory)


def problems_in(notebook: dict) -> list[str]:
    """What went wrong, cell by cell: errors, tracebacks written to stderr, code cells that never ran."""
    problems = []
    code_cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    for number, cell in enumerate(code_cells, start=1):
        for output in cell["outputs"]:
            if output["output_type"] == "error":
                problems.append(f"code cell {number}: {output['ename']}: {output['evalue']}")
            elif output["output_type"] == "stream" and output["name"] == "stderr":
                text = "".join(output["text"])
                if "Traceback" in text:
                    problems.append(f"code cell {number} wrote a traceback: ...{text[-500:]}")
        if cell["execution_count"] is None and "".join(cell["source"]).strip():
            problems.append(f"code cell {number} did not run")
    return problems


def run_in_jupyterlab(chromium, folder: ServedFolder, path: str, screenshot: Path, then=None) -> None:
    """Open the notebook at `path` (relative to the served folder), run all its cells, and assert none failed;
    then call `then(page)`, if given, to use the notebook as a student would."""
    lab = folder.lab
    kernel = nbformat.read(folder.root / path, as_version=4).metadata.kernelspec.name
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{lab.address}/lab/tree/{path}?token={lab.token}&reset")  # reset: no tabs from an earlier test
        state = page.wait_for_function(KERNEL_READY_OR_DIALOG, arg=path, timeout=KERNEL_START_TIMEOUT).json_value()
        assert state == {"kernel": kernel, "status": "idle"}, f"the kernel '{kernel}' did not start: {state}\n{lab.log_tail()}"

        page.evaluate(START_RUN_ALL)
        page.locator(".jp-Dialog .jp-mod-accept").click()  # "Restart Kernel?" -> Restart
        page.locator(".jp-Dialog").wait_for(state="detached")
        page.wait_for_function(RUN_FINISHED, timeout=NOTEBOOK_TIMEOUT, polling=1000)
        dialog = page.evaluate(OPEN_DIALOG)
        page.wait_for_function(PICTURES_LOADED, timeout=30_000)
        page.evaluate(SHOW_LAST_CODE_CELL)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=screenshot)

        assert dialog is None, f"JupyterLab stopped with a dialog: {dialog}\n{lab.log_tail()}"
        problems = problems_in(page.evaluate(NOTEBOOK_JSON))
        assert not problems, f"{path} (screenshot: {screenshot}):\n" + "\n".join(problems)
        broken = page.evaluate(BROKEN_PICTURES)
        assert not broken, f"{path} shows broken pictures: {broken}"
        if then is not None:
            then(page)
    finally:
        page.close()
        for session in lab.api("sessions"):  # frees the kernel's memory for the next notebook
            lab.api(f"sessions/{session['id']}", method="DELETE")


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_each_notebook_runs_to_the_end_in_jupyterlab(chromium, kit_copy, name, tmp_path):
    # Notebook 5's run goes on to an upload (below), so that it runs once, not once more for the upload.
    then = upload_a_phone_sized_photo(tmp_path) if name == UPLOAD_NOTEBOOK else None
    run_in_jupyterlab(chromium, kit_copy, f"notebooks/{name}", SCREENSHOTS / f"{Path(name).stem}.png", then=then)


@pytest.mark.parametrize("name", CHINESE_NOTEBOOK_NAMES)
def test_each_chinese_notebook_runs_to_the_end_in_jupyterlab_in_chinese(chromium, kit_copy_zh, name, tmp_path):
    def in_chinese(page):
        menus = page.locator(".lm-MenuBar").first.inner_text()
        assert "文件" in menus, f"JupyterLab's menus should be in Chinese: {menus!r}"
        if then is not None:
            then(page)

    then = upload_a_phone_sized_photo(tmp_path, "zh") if name == UPLOAD_NOTEBOOK else None
    run_in_jupyterlab(chromium, kit_copy_zh, f"notebooks/zh/{name}", SCREENSHOTS / f"zh-{Path(name).stem}.png", then=in_chinese)


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_each_release_notebook_with_the_reference_solutions_runs_to_the_end_in_jupyterlab(chromium, solved_release, name):
    # A release notebook whose code, solutions written in, is the source's line for line (no exercise, no path
    # that the release's flat layout changes) runs exactly what the source run above ran, so it is not run twice
    # (notebooks 1 and 4, which train). The others read the release's own data, model and module.
    if _code_sources(solved_release.root / name) == _code_sources(KIT_DIR / "notebooks" / name):
        pytest.skip(f"the release's {name} runs the same code as the source notebook, run by the test above")
    run_in_jupyterlab(chromium, solved_release, name, SCREENSHOTS / f"release-{Path(name).stem}.png")


# A whole photo with one hand, from a wild test session (never trained on), that the kit reads right; and its digit.
WILD_WHOLE_PHOTO, WILD_WHOLE_PHOTO_DIGIT = "frames/train_16_pic00002.jpg", 5  # session 16, a test session here


def phone_sized_photo(folder: Path) -> tuple[Path, int]:
    """A whole photo blown up to 4624x3468 (16 megapixels) with sensor-like noise, a JPEG over Tornado's 10 MiB message limit,
    and its digit: a photo of a hand in a room from ../shared's wild test sessions, or without ../shared the
    kit's drawn whole photo."""
    import numpy as np
    from PIL import Image

    from tools.data.real_splits import WILD_PHOTOS

    wild = WILD_PHOTOS / WILD_WHOLE_PHOTO
    source, digit = (wild, WILD_WHOLE_PHOTO_DIGIT) if wild.is_file() else (KIT_DIR / "images" / "sample_whole_photo.jpg", 2)
    small = Image.open(source).convert("RGB")
    pixels = np.asarray(small.resize((4624, 3468), Image.Resampling.BICUBIC), dtype=np.float32)
    pixels += np.random.default_rng(0).normal(0, 16, pixels.shape)
    path = folder / f"phone_photo_of_a_{digit}.jpg"
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=97)
    return path, digit


def upload_a_phone_sized_photo(folder: Path, edition: str = "en"):
    """What a student does after running notebook 5: upload a phone-sized whole photo (over 10 MiB), and read
    the answer under the upload button, beside the photo with the hand's box and the crop the model read."""
    photo, digit = phone_sized_photo(folder)
    assert photo.stat().st_size > 10 * 2**20, "the photo must be larger than Jupyter's default websocket message limit"

    def upload(page):
        # JupyterLab renders only the cells in view: bring the upload cell there first.
        assert page.evaluate(SHOW_CELL_STARTING_WITH, "upload = widgets.FileUpload") >= 0
        with page.expect_file_chooser() as chooser:  # the widget's file input is not in the page: its button opens it
            page.locator(".widget-upload").click()
        chooser.value.set_files(str(photo))
        answer = page.locator(".widget-output").get_by_text(ANSWER[edition].format(digit=digit))
        answer.wait_for(timeout=60_000)
        answer.scroll_into_view_if_needed()
        page.screenshot(path=SCREENSHOTS / f"{'' if edition == 'en' else edition + '-'}05_your_own_image-upload.png")
        assert page.locator(".widget-output img").count() == 2  # the photo with the box beside the crop, then the bars

    return upload


@pytest.fixture(scope="module")
def website(chromium):
    """The course website, built as `make site` builds it and served on this machine only."""
    import functools
    import http.server
    import threading

    from tools.docs import site

    root = site.build()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("page_name, shows", [
    ("index.html", "Residual networks, hands on"),
    ("02_residual_blocks.html", "### START CODE HERE ###"),
])
def test_the_course_website_opens_in_chromium(chromium, website, page_name, shows):
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    try:
        response = page.goto(f"{website}/{page_name}")
        assert response is not None and response.ok, f"{page_name}: {response.status if response else 'no response'}"
        page.get_by_text(shows, exact=False).first.wait_for(timeout=30_000)
        broken = page.evaluate("() => Array.from(document.images).filter(i => i.complete && i.naturalWidth === 0)"
                               ".map(i => i.getAttribute('src'))")
        assert not broken, f"{page_name} shows broken pictures: {broken}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"site-{Path(page_name).stem}.png")
    finally:
        page.close()
