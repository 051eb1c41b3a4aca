"""A live server on loopback and headless Chromium (Debian's chromium + chromedriver, through Selenium).

`make test` installs chromium when it is missing and it may (root with apt-get). Without it the browser
tests skip with the reason, except under CI (CI=true), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
from werkzeug.serving import make_server

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def _browser_paths() -> tuple[str | None, str | None]:
    binary = next((path for name in CHROMIUM_CANDIDATES if (path := shutil.which(name))), None)
    return binary, shutil.which("chromedriver")


@pytest.fixture
def live_server(app):
    """The test app served by werkzeug on 127.0.0.1 in a thread (threaded: streams and posts overlap)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)  # the OS's port, bound at once: no race
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser():
    yield from _chromium(scripts=True)


@pytest.fixture
def browser_without_scripts():
    """Chromium with JavaScript turned off, as some users keep it: `<noscript>` content is live."""
    yield from _chromium(scripts=False)


def _chromium(scripts: bool):
    binary, driver_path = _browser_paths()
    if not binary or not driver_path:
        reason = (
            "headless Chromium is not installed (need Debian's `chromium` and `chromium-driver`; "
            "`make test` installs them when run as root)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    if not scripts:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def sign_in(browser, live_server: str, email: str) -> None:
    """The sign-in form filled and sent like a person would (the account exists, with TEST_PASSWORD)."""
    from selenium.webdriver.common.by import By

    from tests.conftest import TEST_PASSWORD

    browser.get(f"{live_server}/auth/login")
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(TEST_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]").click()


def page_wait(browser, timeout: float):
    """A `WebDriverWait` that also rides out an element being swapped while it is read.

    HTMX replaces parts of the page under a waiting condition; Chrome then answers "Node with given id
    does not belong to the document", an unknown-error `WebDriverException` that Selenium's conditions
    do not catch (only `StaleElementReferenceException`). The condition is tried again instead; a page
    that never gets there still fails at the timeout.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, ignored_exceptions=(WebDriverException,))


def finished_columns(browser, count: int, timeout: float = 90) -> list:
    """The finished answers of a Compare or Arena page, once `count` of them are in."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished = browser.find_elements(
            By.CSS_SELECTOR, ".compare-column article.msg-assistant[data-status=complete]"
        )
        if len(finished) == count:
            return finished
        time.sleep(0.05)
    pytest.fail("both answers never finished in the page")
