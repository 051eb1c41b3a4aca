"""A double click on a plain form's button sends it once (it would start two chats, runs or imports)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import ChatSession
from tests.browser.conftest import page_wait, sign_in

pytestmark = pytest.mark.slow


def test_a_double_click_on_start_starts_one_chat(app, make_user, default_model_id, live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    make_user("browser@example.com")
    wait = page_wait(browser, 30)
    sign_in(browser, live_server, "browser@example.com")
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, "Chat"))).click()
    button = wait.until(ec.element_to_be_clickable((By.ID, "new-chat-button")))
    # Two clicks 60 ms apart, as a quick double click lands (Selenium's double_click is one gesture).
    browser.execute_script("arguments[0].click(); setTimeout(() => arguments[0].click(), 60)", button)
    wait.until(ec.presence_of_element_located((By.ID, "composer")))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ChatSession)) == 1
