"""A real browser with JavaScript off: the chat still answers, the send's page load writing the reply."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import ChatMessage, ChatSession
from tests.browser.conftest import page_wait, sign_in
from tests.chat.conftest import PINNED_PROMPT

pytestmark = pytest.mark.slow


def test_a_message_sent_without_scripts_comes_back_answered(
    app, make_user, default_model_id, live_server, browser_without_scripts
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    browser = browser_without_scripts
    browser.set_page_load_timeout(120)  # the send's page load lasts as long as the answer takes
    make_user("noscript@example.com")
    sign_in(browser, live_server, "noscript@example.com")
    browser.get(f"{live_server}/chat/")
    wait = page_wait(browser, 120)  # a click returns when the post starts; the answered page comes later
    finished = (By.CSS_SELECTOR, "article.msg-assistant[data-status=complete]")
    browser.find_element(By.ID, "new-chat-button").click()
    # Scripts are really off: the <noscript> field is a live form control, not text.
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#composer input[name=no_script]")))
    with app.app_context():  # greedy decoding, so the pinned prompt's answer is known
        db.session.execute(db.update(ChatSession).values(temperature=0.0, max_tokens=32))
        db.session.commit()

    browser.find_element(By.CSS_SELECTOR, "#composer textarea").send_keys(PINNED_PROMPT)
    browser.find_element(By.ID, "send-button").click()  # a plain form post; the load ends answered

    [answer] = wait.until(ec.presence_of_all_elements_located(finished))
    assert "Paris" in answer.find_element(By.CSS_SELECTOR, ".msg-body").text
    assert not browser.find_elements(By.CSS_SELECTOR, "article.streaming")

    # A reply left pending (sent from a tab with scripts on) has a button that writes it.
    with app.app_context():
        session = db.session.execute(db.select(ChatSession)).scalar_one()
        db.session.add(ChatMessage(session_id=session.id, role="user", content=PINNED_PROMPT))
        db.session.add(ChatMessage(session_id=session.id, role="assistant", content="", status="pending"))
        db.session.commit()
    browser.refresh()
    browser.find_element(By.XPATH, "//button[normalize-space()='Write the reply']").click()
    wait.until(lambda _: len(browser.find_elements(*finished)) == 2)
    assert not browser.find_elements(By.CSS_SELECTOR, "article.streaming")
