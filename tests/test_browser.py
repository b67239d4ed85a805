"""The learner's JupyterLab in a real browser (headless Chromium): ``make test-browser``.

On a copy of the course, ``make lab`` starts on a free port with a learner's completed lab 01
in ``mylabs/`` (the solution notebook). The test runs all its cells in JupyterLab, checks that
no cell has an error and that the computation graph (SVG) and the plots (PNG) rendered,
presses *Validate* and reads the dialog, opens an untouched lab and checks that it is clean
(not "unsaved"), validates it and reads the failure dialog, checks that no instructor-only
command, menu or endpoint is reachable and that saving over the released lab is refused. Screenshots go to ``grader/browser-test/`` (git-ignored).

Needs Chromium and its WebDriver (Debian: ``apt-get install chromium chromium-driver``; .ci/run
installs them) and selenium (requirements/course.txt); nothing is downloaded at run time.
The test runs only under ``make test-browser`` (MICROGRAD_PLUS_BROWSER_TEST=1); without a
browser it is skipped there, unless MICROGRAD_PLUS_REQUIRE_BROWSER=1 (CI), where it fails.
"""  # noqa: E501

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from grader.validation_report import HIDDEN_NOTE, PASS_TEXT

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "grader" / "browser-test"
LAB, UNTOUCHED = "01_value", "02_tensor"
TOKEN = "microgradplus-browser-test"
INSTRUCTOR_COMMANDS = [
    "nbgrader:open-formgrader",
    "nbgrader:open-formgrader-local",
    "nbgrader:open-course-list",
    "nbgrader:open-assignment-list",
    "nbgrader:open-create-assignment",
]
INSTRUCTOR_ENDPOINTS = ["formgrader", "formgrader/api/assignments", "formgraders", "courses", "assignments"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        os.environ.get("MICROGRAD_PLUS_BROWSER_TEST") != "1",
        reason="the browser test runs on its own: make test-browser",
    ),
]


def _browser() -> tuple[str, str] | None:
    chromium = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _course_copy(dest: Path) -> Path:
    """The committed course (what a learner clones), with a learner's completed lab 01 in mylabs/."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, files.split("\0")):
        if rel.split("/")[0] in ("solutions", "tests", "docs", "bench", "docker") or not (ROOT / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    (dest / "mylabs" / LAB).mkdir(parents=True)
    shutil.copy2(ROOT / "solutions" / LAB / f"{LAB}.ipynb", dest / "mylabs" / LAB / f"{LAB}.ipynb")
    return dest


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``make lab`` on a copy of the course; yields (base url, course folder)."""
    if _browser() is None:
        message = "Chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("MICROGRAD_PLUS_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    course = _course_copy(tmp_path_factory.mktemp("course"))
    work = (course / "mylabs" / LAB / f"{LAB}.ipynb").read_bytes()
    port = _free_port()
    log = (tmp_path_factory.mktemp("log") / "lab.log").open("w")
    args = f"--no-browser --ip=127.0.0.1 --ServerApp.token={TOKEN} --LabApp.expose_app_in_browser=True"
    server = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"PORT={port}", f"VENV={Path(sys.prefix)}", f"LAB_ARGS={args}"],
        cwd=course,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5):
                    break
            except OSError:
                assert server.poll() is None, f"make lab exited: {(log.name and Path(log.name).read_text())[-3000:]}"
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start in 60 s")
        assert (course / "mylabs" / LAB / f"{LAB}.ipynb").read_bytes() == work, "make lab overwrote the learner's lab"
        assert (course / "mylabs" / UNTOUCHED / f"{UNTOUCHED}.ipynb").exists(), "make lab made no copy of the labs"
        yield base, course
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # make and JupyterLab (which shuts its kernels down)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = _browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_script_timeout(30)
    shutil.rmtree(SHOTS, ignore_errors=True)  # only this run's screenshots
    SHOTS.mkdir(parents=True)
    yield browser
    browser.quit()


# ---------------------------------------------------------------- helpers run in the page
def _wait(browser, script: str, timeout: float, what: str, *args):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = browser.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.5)
    browser.save_screenshot(str(SHOTS / "timeout.png"))
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def _open(browser, base: str, path: str) -> None:
    browser.get(f"{base}/lab/tree/{path}?token={TOKEN}")
    _wait(
        browser,
        "return window.jupyterapp && window.jupyterapp.shell.currentWidget && "
        "window.jupyterapp.shell.currentWidget.context && "
        "window.jupyterapp.shell.currentWidget.context.path === arguments[0] && "
        "window.jupyterapp.shell.currentWidget.sessionContext.session && "
        "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
        "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus === 'connected' && "
        "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        90,
        f"{path} to open with an idle kernel",
        path,
    )


CURRENT = "const panel = window.jupyterapp.shell.currentWidget; const nb = panel.content;"


def _dialog(browser, timeout: float) -> dict:
    return _wait(
        browser,
        """
        const msg = document.querySelector('.jp-Dialog #validation-message');
        if (!msg) return null;
        const success = msg.querySelector('p');
        return {classes: msg.className, text: msg.innerText,
                before: success ? getComputedStyle(success, '::before').content : '',
                hiddenLabel: msg.firstElementChild ? getComputedStyle(msg.firstElementChild).display : ''};
    """,
        timeout,
        "the validation dialog",
    )


def _press_validate(browser) -> None:
    button = _wait(
        browser,
        "const item = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
        ".validate-button'); return item && (item.querySelector('button, jp-button') || item)",
        30,
        "the Validate button",
    )
    button.click()


def _close_dialog(browser) -> None:
    browser.execute_script("document.querySelector('.jp-Dialog .jp-mod-accept').click()")
    _wait(browser, "return !document.querySelector('.jp-Dialog')", 10, "the dialog to close")


# ---------------------------------------------------------------- the test
def test_the_learners_jupyterlab(lab, browser):
    base, course = lab
    start = time.monotonic()

    # 1. no instructor-only action: commands, menu, server endpoints
    _open(browser, base, f"mylabs/{LAB}/{LAB}.ipynb")
    reachable = browser.execute_script(
        "return arguments[0].filter(c => window.jupyterapp.commands.hasCommand(c))", INSTRUCTOR_COMMANDS
    )
    assert reachable == [], f"instructor-only commands in the learner's JupyterLab: {reachable}"
    menus = browser.execute_script(
        "return [...document.querySelectorAll('.lm-MenuBar-itemLabel')].map(e => e.innerText)"
    )
    assert "File" in menus and not [m for m in menus if "nbgrader" in m.lower()], menus
    for endpoint in INSTRUCTOR_ENDPOINTS:
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{base}/{endpoint}?token={TOKEN}", timeout=10)
    assert browser.execute_script("return window.jupyterapp.commands.hasCommand('notebook:run-all-cells')")

    # 2. a completed lab 01: run every cell, no errors, the graph and the plots rendered
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    _wait(
        browser,
        CURRENT
        + """
        const code = nb.widgets.filter(c => c.model.type === 'code');
        return panel.sessionContext.session.kernel.status === 'idle' &&
               code.every(c => c.model.executionCount !== null) && code.length;""",
        120,
        "every cell of lab 01 to run",
    )
    errors = browser.execute_script(
        CURRENT
        + """
        return nb.widgets.filter(c => c.model.type === 'code').flatMap(c => c.model.outputs.toJSON()
            .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue));"""
    )
    assert errors == [], f"cells of lab 01 raised: {errors}"
    rendered = browser.execute_script(
        CURRENT
        + """
        const shown = e => e && (e.tagName.toLowerCase() === 'img' ? e.complete && e.naturalWidth > 0
                                                                  : e.getBoundingClientRect().width > 0);
        const svgs = [...document.querySelectorAll('.jp-RenderedSVG')].filter(r => shown(r.querySelector('img, svg')));
        const pngs = [...document.querySelectorAll('.jp-RenderedImage img')].filter(shown);
        const graphs = nb.widgets.filter(c => c.model.type === 'code').flatMap(c => c.model.outputs.toJSON())
            .map(o => (o.data || {})['image/svg+xml']).filter(Boolean).map(s => [].concat(s).join(''));
        return {svg: svgs.length, png: pngs.length, nodes: graphs.length ? graphs[0].split('class="node"').length - 1 : 0};"""  # noqa: E501
    )
    assert rendered["svg"] >= 1 and rendered["nodes"] >= 3, f"the computation graph did not render: {rendered}"
    assert rendered["png"] >= 3, f"the plots did not render: {rendered}"
    for name, selector in (("graph", ".jp-RenderedSVG"), ("plot", ".jp-RenderedImage")):
        element = browser.execute_script(
            f"const e = [...document.querySelectorAll('{selector}')].pop();"
            "e.scrollIntoView({block: 'center'}); return e;"
        )
        time.sleep(0.3)
        element.screenshot(str(SHOTS / f"lab01_{name}.png"))
    browser.save_screenshot(str(SHOTS / "lab01_run_all.png"))

    # 3. Validate on the completed lab: a pass that says hidden tests run at grading
    _press_validate(browser)
    dialog = _dialog(browser, 150)
    browser.save_screenshot(str(SHOTS / "lab01_validate_pass.png"))
    assert "validation-success" in dialog["classes"], dialog
    assert dialog["before"] == json.dumps(PASS_TEXT), (
        f"the pass dialog does not say hidden tests run at grading: {dialog}"
    )
    _close_dialog(browser)

    # 4. an untouched lab opens clean (while the bare metadata the labs had before opens "unsaved"),
    #    and its Validate dialog counts the failing cells first
    untouched = course / "mylabs" / UNTOUCHED / f"{UNTOUCHED}.ipynb"
    bare = json.loads(untouched.read_text())
    bare["metadata"]["language_info"] = {"name": "python"}
    (untouched.parent / "bare_metadata.ipynb").write_text(json.dumps(bare))
    for name, dirty in (("bare_metadata.ipynb", True), (untouched.name, False)):
        _open(browser, base, f"mylabs/{UNTOUCHED}/{name}")
        time.sleep(2)  # let the kernel's metadata arrive
        state = browser.execute_script(
            CURRENT + "return {dirty: panel.context.model.dirty, "
            "tab: document.querySelector('.lm-TabBar-tab.jp-mod-current').className}"
        )
        assert state["dirty"] is dirty and ("jp-mod-dirty" in state["tab"]) is dirty, f"{name}: {state}"
    browser.save_screenshot(str(SHOTS / "untouched_lab.png"))
    _press_validate(browser)
    dialog = _dialog(browser, 120)
    browser.save_screenshot(str(SHOTS / "untouched_validate_fail.png"))
    assert "validation-failed" in dialog["classes"] and dialog["hiddenLabel"] == "none", dialog
    first = dialog["text"].strip().splitlines()[0]
    assert first.endswith("test cells fail.") and first.split()[0].isdigit(), dialog["text"][:500]
    head = dialog["text"][: dialog["text"].index(HIDDEN_NOTE)]
    assert "NotImplementedError: a `# YOUR CODE HERE` stub" in head, dialog["text"][:2000]
    assert "Traceback" not in head and "Traceback" in dialog["text"], "tracebacks come after the messages"
    _close_dialog(browser)

    # 5. the release itself cannot be saved over from the learner's JupyterLab
    released = course / "labs" / LAB / f"{LAB}.ipynb"
    before = released.read_bytes()
    _open(browser, base, f"labs/{LAB}/{LAB}.ipynb")
    browser.execute_script("window.jupyterapp.commands.execute('docmanager:save')")
    error = _wait(
        browser, "const d = document.querySelector('.jp-Dialog'); return d && d.innerText", 30, "the save error"
    )
    browser.save_screenshot(str(SHOTS / "release_save_refused.png"))
    assert f"Your copy is mylabs/{LAB}/{LAB}.ipynb" in error, error
    browser.execute_script("document.querySelector('.jp-Dialog .jp-mod-accept, .jp-Dialog .jp-mod-reject').click()")
    assert released.read_bytes() == before

    assert (course / "mylabs" / LAB / f"{LAB}.ipynb").exists()
    elapsed = time.monotonic() - start
    print(f"\nbrowser test: {elapsed:.0f} s in the browser; screenshots in {SHOTS}")
