"""The config editor in a real browser: pick a template, break a field, see the finding appear beside it
(HTMX re-lint on change), fix it, save, and find the config's card."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import TrainingConfig
from tests.browser.conftest import page_wait, sign_in

pytestmark = pytest.mark.slow


def test_live_lint_and_save_in_the_editor(app, make_user, live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    make_user("editor@example.com")
    wait = page_wait(browser, 20)
    sign_in(browser, live_server, "editor@example.com")
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, "Configs"))).click()
    wait.until(ec.element_to_be_clickable((By.LINK_TEXT, "Use SFT PC Building"))).click()

    batch = wait.until(ec.presence_of_element_located((By.NAME, "training__batch_size")))
    assert batch.get_attribute("value") == "8"
    batch.clear()
    batch.send_keys("0")
    findings = (By.CSS_SELECTOR, "#findings-training__batch_size small.error")
    wait.until(ec.text_to_be_present_in_element(findings, "Batch size must be at least 1."))
    assert "1 error" in browser.find_element(By.ID, "lint-summary").text

    batch.clear()
    batch.send_keys("4")
    wait.until(ec.invisibility_of_element_located(findings))
    wait.until(ec.text_to_be_present_in_element((By.ID, "lint-summary"), "valid"))
    name = browser.find_element(By.NAME, "name")
    name.clear()
    name.send_keys("pc parts")
    browser.find_element(By.CSS_SELECTOR, "#config-form button[type=submit]").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".flashes"), "Saved pc parts"))
    with app.app_context():
        row = db.session.execute(db.select(TrainingConfig)).scalar_one()
        assert row.name == "pc parts" and row.config["training"]["batch_size"] == 4
    browser.find_element(By.LINK_TEXT, "← Training configs").click()
    card = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"#config-{row.id}")))
    assert "valid" in card.text and "sft_pc_building" in card.text
