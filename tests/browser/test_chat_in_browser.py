"""One real browser run: sign in, start a chat with the default model, watch the answer stream in."""

from __future__ import annotations

import time

import pytest

from app.extensions import db
from app.models import ChatSession
from tests.browser.conftest import finished_columns, page_wait, sign_in
from tests.chat.conftest import PINNED_PROMPT

pytestmark = pytest.mark.slow


def test_streamed_answer_appears_in_the_page(app, make_user, default_model_id, live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    make_user("browser@example.com")
    wait = page_wait(browser, 30)
    sign_in(browser, live_server, "browser@example.com")
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, "Chat"))).click()

    wait.until(ec.element_to_be_clickable((By.ID, "new-chat-button"))).click()
    wait.until(ec.presence_of_element_located((By.ID, "composer")))
    with app.app_context():  # greedy decoding, so the pinned prompt's answer is known
        db.session.execute(db.update(ChatSession).values(temperature=0.0, max_tokens=48))
        db.session.commit()

    box = browser.find_element(By.CSS_SELECTOR, "#composer textarea")
    box.send_keys(PINNED_PROMPT + Keys.ENTER)  # Enter sends (Shift+Enter would start a new line)

    seen_while_streaming = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pieces = browser.find_elements(By.CSS_SELECTOR, "article.streaming .stream-text span")
        if pieces:
            seen_while_streaming = True
        finished = browser.find_elements(By.CSS_SELECTOR, "article.msg-assistant[data-status=complete]")
        if finished:
            break
        time.sleep(0.01)
    else:
        pytest.fail("the answer never finished in the page")

    answer = finished[0].find_element(By.CSS_SELECTOR, ".msg-body").text
    assert "Paris" in answer
    assert "tokens" in finished[0].text  # the per-message figures
    # The composer was reset for the next message, and the bubble came from the event stream.
    assert browser.find_element(By.CSS_SELECTOR, "#composer textarea").get_attribute("value") == ""
    assert seen_while_streaming or browser.execute_script(
        "return performance.getEntriesByType('resource').some(e => e.name.includes('/stream'))"
    )

    # Regenerate (shown on the last reply only) swaps in a new streamed reply in place of the old one.
    old_id = finished[0].get_attribute("id")
    finished[0].find_element(By.XPATH, ".//button[normalize-space()='Regenerate']").click()
    wait.until(ec.invisibility_of_element_located((By.ID, old_id)))
    finished = wait.until(
        ec.presence_of_all_elements_located((By.CSS_SELECTOR, "article.msg-assistant[data-status=complete]"))
    )
    assert len(finished) == 1 and "Paris" in finished[0].text

    # Save the answer as a training example: the form loads under the card and swaps to a link.
    finished[0].find_element(By.XPATH, ".//button[normalize-space()='Save as training example']").click()
    form = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "form.example-form")))
    name = form.find_element(By.NAME, "new_name")
    name.clear()
    name.send_keys("From the browser")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    saved = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".example-saved")))
    assert "Saved as row 1 of" in saved.text
    saved.find_element(By.LINK_TEXT, "From the browser").click()
    row = wait.until(ec.presence_of_element_located((By.ID, "row-1")))
    assert "Paris" in row.text and "from chat" in row.text


def test_compare_page_streams_two_answers_side_by_side(
    app, make_user, default_model_id, live_server, browser
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    from app.models import LLMModel

    with app.app_context():  # the same GGUF registered twice: two local models to compare
        default = db.session.get(LLMModel, default_model_id)
        db.session.add(
            LLMModel(name="twin", provider="local_gguf", gguf_path=default.gguf_path, max_tokens=32)
        )
        default.max_tokens = 32
        db.session.commit()
    make_user("compare@example.com")
    wait = page_wait(browser, 30)
    sign_in(browser, live_server, "compare@example.com")
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, "Chat"))).click()
    wait.until(ec.element_to_be_clickable((By.ID, "compare-button"))).click()

    form = wait.until(ec.presence_of_element_located((By.ID, "compare-form")))
    for box in form.find_elements(By.CSS_SELECTOR, "input[name=models]"):
        if not box.is_selected():
            box.click()
    form.find_element(By.NAME, "content").send_keys(PINNED_PROMPT)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    finished = finished_columns(browser, 2)
    columns = browser.find_elements(By.CSS_SELECTOR, ".compare-column")
    assert [column.find_element(By.TAG_NAME, "h2").text for column in columns] == [
        "SmolLM2-135M-Instruct",
        "twin",
    ]
    assert all(answer.find_element(By.CSS_SELECTOR, ".msg-body").text for answer in finished)
