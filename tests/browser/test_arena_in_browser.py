"""The arena in a real browser: two blind answers stream in, the vote reveals the names, and the
leaderboard ranks the winner first."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import LLMModel
from tests.browser.conftest import finished_columns, page_wait, sign_in
from tests.chat.conftest import PINNED_PROMPT

pytestmark = pytest.mark.slow


def test_a_blind_battle_then_a_vote_then_the_leaderboard(
    app, make_user, default_model_id, live_server, browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    with app.app_context():  # the same GGUF registered twice: two local models to battle
        default = db.session.get(LLMModel, default_model_id)
        twin = LLMModel(name="twin", provider="local_gguf", gguf_path=default.gguf_path, max_tokens=24)
        db.session.add(twin)
        default.max_tokens = 24
        db.session.commit()
    make_user("arena@example.com")
    wait = page_wait(browser, 30)
    sign_in(browser, live_server, "arena@example.com")
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, "Chat"))).click()
    wait.until(ec.element_to_be_clickable((By.ID, "arena-button"))).click()

    form = wait.until(ec.presence_of_element_located((By.ID, "arena-form")))
    assert all(box.is_selected() for box in form.find_elements(By.CSS_SELECTOR, "input[name=models]"))
    form.find_element(By.NAME, "content").send_keys(PINNED_PROMPT)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    finished = finished_columns(browser, 2)
    browser.save_screenshot(str(tmp_path / "blind.png"))  # for a look when the test fails
    columns = browser.find_elements(By.CSS_SELECTOR, ".compare-column")
    assert [column.find_element(By.TAG_NAME, "h2").text for column in columns] == ["Model A", "Model B"]
    assert [answer.find_element(By.CSS_SELECTOR, ".msg-meta strong").text for answer in finished] == [
        "Model A",
        "Model B",
    ]
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "twin" not in main and "SmolLM2" not in main

    vote = "//form[@id='arena-vote']//button[normalize-space()='A is better']"
    browser.find_element(By.XPATH, vote).click()
    verdict = wait.until(ec.presence_of_element_located((By.ID, "arena-verdict")))
    browser.save_screenshot(str(tmp_path / "revealed.png"))
    assert "Your vote: A is better" in verdict.text
    names = [heading.text for heading in browser.find_elements(By.CSS_SELECTOR, ".compare-column h2")]
    assert sorted(names) == ["SmolLM2-135M-Instruct", "twin"]  # A's name first

    browser.find_element(By.LINK_TEXT, "Leaderboard").click()
    table = wait.until(ec.presence_of_element_located((By.ID, "arena-standings")))
    browser.save_screenshot(str(tmp_path / "leaderboard.png"))
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 2 and names[0] in rows[0].text and names[1] in rows[1].text
