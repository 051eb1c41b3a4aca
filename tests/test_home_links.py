"""Every step of the home page's loop links to where the user does it."""

from __future__ import annotations

import re


def test_each_step_of_the_loop_links_to_its_page(signed_in):
    client, _ = signed_in()
    page = client.get("/").get_data(as_text=True)
    loop = re.search(r"<h2>The loop</h2>\s*<ol>(.*?)</ol>", page, re.S).group(1)
    steps = re.findall(r"<li>(.*?)</li>", loop, re.S)
    assert steps and all("<a href=" in step for step in steps), [s for s in steps if "<a href=" not in s]
    generate = next(step for step in steps if "training data" in step)
    assert 'href="/datasets/generate"' in generate
    assert client.get("/datasets/generate").status_code == 200
