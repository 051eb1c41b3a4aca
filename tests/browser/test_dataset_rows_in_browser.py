"""Dataset rows in a real browser: search as you type (HTMX swaps the list), edit a row as JSON in place,
see a wrong row refused beside it, fix it, and land back on the page with the row saved."""

from __future__ import annotations

import json

import pytest

from app.datasets.services import store_rows
from app.extensions import db
from app.models import Dataset, User
from tests.browser.conftest import page_wait, sign_in

pytestmark = pytest.mark.slow


def row(city: str) -> dict:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": city}}}
    return {
        "messages": [
            {"role": "user", "content": f"Weather in {city}?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
        ]
    }


def test_search_and_edit_a_row_in_the_page(app, make_user, live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    make_user("rows@example.com")
    with app.app_context():
        owner = db.session.execute(db.select(User).where(User.email == "rows@example.com")).scalar_one()
        cities = [f"City{i:02d}" for i in range(30)]
        dataset_id = store_rows(
            owner.id, "cities", "sft", [row(c) for c in cities], source="upload", source_format="toolsmith"
        ).id
    wait = page_wait(browser, 20)
    sign_in(browser, live_server, "rows@example.com")
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, "Datasets")))
    browser.get(f"{live_server}/datasets/{dataset_id}")
    wait.until(ec.text_to_be_present_in_element((By.ID, "dataset-rows"), "Rows 1–20 of 30."))

    browser.find_element(By.NAME, "q").send_keys("city17")
    wait.until(ec.text_to_be_present_in_element((By.ID, "dataset-rows"), "Rows 1–1 of 1 matching (of 30)."))
    assert "q=city17" in browser.current_url  # the search is in the address

    browser.find_element(By.CSS_SELECTOR, "#row-18 .row-actions button").click()  # Edit
    box = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#row-18 textarea[name=row_json]")))
    edited = json.loads(box.get_attribute("value"))
    assert edited == row("City17")
    edited["messages"][1]["tool_calls"][0]["function"]["arguments"] = {"city": "Oslo"}
    browser.execute_script("arguments[0].value = arguments[1]", box, '{"messages": []')
    browser.find_element(By.CSS_SELECTOR, "#row-18 button[type=submit]").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#row-18 .flash-error"), "Not valid JSON"))
    box = browser.find_element(By.CSS_SELECTOR, "#row-18 textarea[name=row_json]")
    browser.execute_script("arguments[0].value = arguments[1]", box, json.dumps(edited))
    browser.find_element(By.CSS_SELECTOR, "#row-18 button[type=submit]").click()
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "main"), "Saved row 18."))
    assert "q=city17" in browser.current_url and "Oslo" in browser.find_element(By.ID, "row-18").text
    with app.app_context():
        path = db.session.get(Dataset, dataset_id).file_path
    with open(path, encoding="utf-8") as handle:
        assert json.loads(handle.readlines()[17]) == edited
