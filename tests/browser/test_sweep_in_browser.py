"""A sweep from the start form in headless Chromium: the checks panel follows the typed values live
(htmx under the CSP), a grid too big is refused before submitting, and the sweep page lists its runs,
whose Compare ticks survive the page's polling."""

from __future__ import annotations

import os

from app.configs.templates import TEMPLATES_BY_KEY
from app.extensions import db
from app.models import TrainingConfig
from tests.browser.conftest import page_wait, sign_in
from tests.training.test_pipeline import sft_rows


def test_a_sweep_is_checked_live_and_started(app, make_user, live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select

    from app.datasets.services import store_rows

    user = make_user("sweeper@example.com")
    with app.test_request_context():
        store_rows(user.id, "weather", "sft", sft_rows(40), source="upload", source_format="toolsmith")
        db.session.add(
            TrainingConfig(
                owner_id=user.id,
                name="lr probe",
                template_type="sft_toolbench",
                config=TEMPLATES_BY_KEY["sft_toolbench"].build(),
            )
        )
        db.session.commit()
    wait = page_wait(browser, 20)
    sign_in(browser, live_server, "sweeper@example.com")
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, "Configs")))
    browser.get(f"{live_server}/runs/")
    wait.until(ec.text_to_be_present_in_element((By.ID, "run-checks"), "Memory estimate"))
    assert Select(browser.find_element(By.NAME, "config_id")).first_selected_option.text == "lr probe"

    browser.find_element(By.CSS_SELECTOR, "#sweep-fields summary").click()
    rates = wait.until(ec.element_to_be_clickable((By.NAME, "sweep_learning_rates")))
    rates.send_keys("1e-4, 2e-4, 5e-4")
    rates.send_keys("\t")  # change fires on leaving the field
    wait.until(ec.text_to_be_present_in_element((By.ID, "run-checks"), "A sweep of 3 runs"))
    assert "lr 0.0005: ready" in browser.find_element(By.ID, "sweep-points").text

    ranks = browser.find_element(By.NAME, "sweep_lora_ranks")
    ranks.send_keys("4 8 16\t")
    wait.until(ec.text_to_be_present_in_element((By.ID, "run-checks"), "3 × 3 makes 9"))
    ranks.clear()
    ranks.send_keys("8 16\t")
    wait.until(ec.text_to_be_present_in_element((By.ID, "run-checks"), "A sweep of 6 runs"))
    if os.environ.get("SCREENSHOT_DIR"):
        browser.save_screenshot(os.path.join(os.environ["SCREENSHOT_DIR"], "sweep-form.png"))

    browser.find_element(By.CSS_SELECTOR, "#start-run button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "sweep-runs")))
    assert "/runs/sweeps/" in browser.current_url
    rows = browser.find_elements(By.CSS_SELECTOR, "#sweep-runs tbody tr")
    assert len(rows) == 6 and "0.0001" in rows[0].text and "queued" in rows[0].text
    if os.environ.get("SCREENSHOT_DIR"):
        browser.save_screenshot(os.path.join(os.environ["SCREENSHOT_DIR"], "sweep-page.png"))

    # The table polls every 3 s while runs are queued: ticks made between polls are kept.
    browser.execute_script(
        "window.sweepSwaps = 0; document.body.addEventListener('htmx:afterSwap', () => window.sweepSwaps++)"
    )
    ticked = [row.find_element(By.CSS_SELECTOR, "input[type=checkbox]") for row in rows[:2]]
    for box in ticked:
        box.click()
    wait.until(lambda driver: driver.execute_script("return window.sweepSwaps") >= 1)
    boxes = browser.find_elements(By.CSS_SELECTOR, "#sweep-runs input[type=checkbox]")
    assert [box.is_selected() for box in boxes] == [True, True, False, False, False, False]
    browser.find_element(By.CSS_SELECTOR, "#compare-sweep-runs button[type=submit]").click()
    wait.until(ec.url_contains("/runs/compare"))
    assert browser.current_url.count("run=") == 2
