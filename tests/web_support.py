"""Browser-test support: the ECPA app served by uvicorn in a thread on a free port, and
headless Debian chromium driven by Playwright; screenshots are kept as test artefacts
under test-artifacts/screenshots/."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self):
        import uvicorn

        from ecpa.api.app import create_app
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("the test server did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server(db_url):
    with LiveServer() as server:
        yield server


_SHARED: dict = {}  # one Playwright and one browser for the whole test session


@pytest.fixture(scope="session")
def browser():
    """Each test module that imports this fixture gets its own fixture instance, but
    Playwright's sync API runs once per thread: so every instance shares one browser,
    closed when the last instance is finished."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI must run the browser tests")
        pytest.skip("chromium not installed: browser tests skipped")
    if not _SHARED:
        from playwright.sync_api import sync_playwright
        p = sync_playwright().start()
        _SHARED.update(playwright=p, users=0, browser=p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]))
    _SHARED["users"] += 1
    yield _SHARED["browser"]
    _SHARED["users"] -= 1
    if _SHARED["users"] == 0:
        _SHARED["browser"].close()
        _SHARED["playwright"].stop()
        _SHARED.clear()


@pytest.fixture
def phone(browser):
    """A cheap Android phone: small screen, Chinese first."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=1,
                                  locale="zh-CN", is_mobile=True, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def transfer_size(page, url: str) -> int:
    """Bytes transferred to load a page and everything it asks for, images aside."""
    requests = []

    def finished(request):
        requests.append(request)

    page.on("requestfinished", finished)
    page.goto(url, wait_until="networkidle")
    page.remove_listener("requestfinished", finished)
    total = 0
    for r in requests:
        if r.resource_type == "image":
            continue
        sizes = r.sizes()  # what went over the wire: headers and (compressed) body
        total += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    return total
