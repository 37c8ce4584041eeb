"""The playground page in a real browser (the system's Chromium), as a person uses it.

Against the tiny model behind the real azmlinfsrv: type, press Tab, watch three suggestions grow,
insert one; a refused value shown beside its field; the keyboard alone; a narrow window. Against a
stand-in for an Azure endpoint: the key the proxy adds and the page never sees, a dropped connection.
Each step is saved as a screenshot (the `screenshot` fixture).
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from distilgpt2_asset.serve import free_port, start_server

from .conftest import PausedAnswer, json_answer, start_playground, stop_playground

pytestmark = pytest.mark.slow
PROMPT = "I believe the meaning of life is"
SUGGESTIONS = 3
WAIT_MS = 60_000  # generous for a busy 2-core machine; nothing here measures time

# Every state the suggestion cards go through, recorded by a MutationObserver the test installs:
# one snapshot (each card's state and text) per batch of DOM changes.
RECORD_SUGGESTIONS = """() => {
  const list = document.getElementById("suggestions");
  window.suggestionLog = [];
  const snapshot = () => window.suggestionLog.push([...list.querySelectorAll(".suggestion")].map(
    (card) => ({ state: card.dataset.state, text: card.querySelector(".suggestion-text").textContent })));
  new MutationObserver(snapshot).observe(
    list, { subtree: true, childList: true, characterData: true, attributes: true });
}"""


@pytest.fixture(scope="module")
def model_server(tiny_mlflow_model, tmp_path_factory):
    """The tiny model on the reference engine: it makes one token per step, so each streamed
    event carries about one token and the suggestions visibly grow."""
    folder = tmp_path_factory.mktemp("model-server")
    with open(folder / "azmlinfsrv.log", "w") as log:
        env = {"TEXTGEN_ENGINE": "transformers", "TEXTGEN_CACHE_DIR": str(folder / "engine-cache")}
        server = start_server(tiny_mlflow_model, port=free_port(), threads=8, env=env, log=log)
        yield server
        assert server.stop() == 0


@pytest.fixture(scope="module")
def playground(model_server, tmp_path_factory):
    running = start_playground(model_server.score_url, tmp_path_factory.mktemp("playground") / "playground.log")
    yield running
    stop_playground(running)


def open_page(page, url: str):
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return page.get_by_label("Your text")


def cards(page):
    return page.locator(".suggestion")


def wait_for_suggestions(page) -> list[str]:
    expect(page.locator('.suggestion[data-state="done"]')).to_have_count(SUGGESTIONS, timeout=WAIT_MS)
    return page.locator(".suggestion-text").all_text_contents()


def sent_requests(page) -> list[dict]:
    """The request preview, parsed: what the page sends now."""
    return [json.loads(text) for text in page.locator(".request-json").all_text_contents()]


def test_tab_streams_three_suggestions_that_grow_side_by_side_and_a_click_inserts_one(page, playground, screenshot):
    editor = open_page(page, playground.url)
    screenshot("empty")
    editor.fill(PROMPT)
    page.get_by_label("temperature").fill("0.8")
    page.get_by_label("max_new_tokens").fill("60")
    screenshot("typed")
    [request] = sent_requests(page)
    assert request == {
        "input_data": [PROMPT] * SUGGESTIONS,
        "params": {
            "temperature": 0.8,
            "top_p": 0.9,
            "max_new_tokens": 60,
            "do_sample": True,
            "truncate": True,
            "return_full_text": False,
            "stream": True,
        },  # fmt: skip
    }

    page.evaluate(RECORD_SUGGESTIONS)
    editor.press("Tab")
    texts = wait_for_suggestions(page)
    screenshot("suggestions")

    assert all(texts) and len(texts) == SUGGESTIONS
    log = page.evaluate("window.suggestionLog")
    for index, final in enumerate(texts):
        seen = [
            s[index]["text"] for s in log if len(s) > index and s[index]["state"] == "streaming" and s[index]["text"]
        ]
        assert len(set(seen)) >= 2, f"suggestion {index + 1} did not grow while streaming: {seen}"
        assert all(final.startswith(text) for text in seen)  # each state a beginning of the final text
        assert [len(text) for text in seen] == sorted(len(text) for text in seen)  # only ever growing
    # side by side, each with its finish reason and token counts
    tops = {round(card.bounding_box()["y"]) for card in cards(page).all()}
    assert len(tops) == 1
    for meta in page.locator(".suggestion-meta").all_text_contents():
        assert (
            "eos: the model ended the text" in meta or "length: reached max_new_tokens" in meta
        ) and "prompt tokens" in meta

    cards(page).nth(1).get_by_role("button").click()
    expect(editor).to_have_value(PROMPT + texts[1])
    expect(editor).to_be_focused()
    expect(cards(page)).to_have_count(0)
    expect(page.get_by_role("status")).to_have_text("Inserted suggestion 2.")
    screenshot("inserted")


def test_a_refused_value_is_shown_beside_its_field_and_the_page_stays_usable(page, playground, screenshot):
    editor = open_page(page, playground.url)
    editor.fill(PROMPT)
    assert page.get_by_label("do_sample").is_checked()
    temperature = page.get_by_label("temperature")
    temperature.fill("0")
    editor.press("End")
    editor.press("Tab")

    message = page.locator("#param-temperature-error")
    expect(message).to_be_visible(timeout=WAIT_MS)
    expect(message).to_contain_text("params.temperature must be > 0 when do_sample is true")
    assert message.evaluate("(error) => error.parentElement.contains(document.getElementById('param-temperature'))")
    expect(temperature).to_have_attribute("aria-invalid", "true")
    expect(temperature).to_have_accessible_description(re.compile("params.temperature must be > 0"))
    expect(temperature).to_be_focused()
    screenshot("refused")

    temperature.fill("0.7")
    expect(message).to_be_hidden()
    expect(temperature).not_to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Suggest").click()
    assert all(wait_for_suggestions(page))
    screenshot("usable-again")


def test_a_text_the_server_refuses_is_marked_on_the_editor(page, playground, screenshot):
    editor = open_page(page, playground.url)
    editor.press("Tab")  # nothing written yet
    message = page.locator("#editor-error")
    expect(message).to_contain_text("input_data[0] is an empty string", timeout=WAIT_MS)
    expect(editor).to_have_attribute("aria-invalid", "true")

    page.get_by_label("truncate").uncheck()
    editor.fill(PROMPT + " again and again" * 400)  # over the model's 1024-token context
    editor.press("Tab")
    expect(message).to_contain_text("over the model's 1024-token limit", timeout=WAIT_MS)
    screenshot("too-long")
    page.get_by_label("truncate").check()
    editor.press("Tab")
    assert all(wait_for_suggestions(page))
    expect(message).to_be_hidden()


def test_the_keyboard_alone_writes_with_the_model(page, playground, screenshot):
    open_page(page, playground.url)
    for control in page.locator("input, textarea").all():
        assert control.evaluate("(c) => c.labels.length > 0"), control.evaluate("(c) => c.outerHTML")
    page.keyboard.press("Tab")  # the editor is the page's first control
    editor = page.get_by_label("Your text")
    expect(editor).to_be_focused()
    page.keyboard.type(PROMPT)
    page.keyboard.press("Tab")
    texts = wait_for_suggestions(page)
    for button in page.locator("button:visible").all():
        assert button.evaluate("(b) => b.textContent.trim() !== ''")

    page.keyboard.press("Escape")  # then Tab leaves the editor, towards the suggestions
    first = cards(page).first.get_by_role("button")
    for _ in range(5):
        page.keyboard.press("Tab")
        if first.evaluate("(b) => b === document.activeElement"):
            break
    expect(first).to_be_focused()
    screenshot("suggestion-focused")
    page.keyboard.press("Enter")
    expect(editor).to_have_value(PROMPT + texts[0])
    expect(editor).to_be_focused()


def test_a_narrow_window_stacks_everything_without_sideways_scrolling(page, playground, screenshot):
    page.set_viewport_size({"width": 390, "height": 844})
    editor = open_page(page, playground.url)
    editor.fill(PROMPT)
    editor.press("Tab")
    wait_for_suggestions(page)
    screenshot("narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    xs = {round(card.bounding_box()["x"]) for card in cards(page).all()}
    assert len(xs) == 1  # one above the other


# Against an Azure endpoint (a stand-in that records what it is sent) -------------------------------

KEY_ENV = "PLAYGROUND_TEST_ENDPOINT_KEY"
KEY = "test-key-3f9a1c7e5b"


@pytest.fixture
def azure_playground(fake_endpoint, tmp_path):
    running = start_playground(fake_endpoint.url, tmp_path / "playground.log", key_env=KEY_ENV, env={KEY_ENV: KEY})
    yield running
    stop_playground(running)


def test_the_proxy_adds_the_key_and_the_page_never_receives_it(page, azure_playground, fake_endpoint, screenshot):
    seen_by_browser = []
    page.on(
        "response", lambda response: seen_by_browser.append((response.url, response.all_headers(), response.body()))
    )
    editor = open_page(page, azure_playground.url)
    expect(page.locator(".target")).to_contain_text(f"with the key from ${KEY_ENV}")
    editor.fill(PROMPT)
    page.get_by_label("seed").fill("7")
    # the preview is redrawn after the input events: read it once it shows the seed
    expect(page.locator(".request-json").first).to_contain_text('"seed": 7')
    previewed = sent_requests(page)
    editor.press("Tab")
    assert wait_for_suggestions(page) == [" one two three"] * SUGGESTIONS
    screenshot("azure-endpoint")

    # what Azure would be sent: the previewed bodies, unchanged, one per seed, each with the key
    received = sorted((r.body for r in fake_endpoint.received), key=lambda body: body["params"]["seed"])
    assert received == previewed  # (the three are sent at once: they may arrive in any order)
    assert [body["params"]["seed"] for body in received] == [7, 8, 9]
    assert {r.headers["Authorization"] for r in fake_endpoint.received} == {f"Bearer {KEY}"}
    # and nothing the browser got, nor the playground's log, holds the key
    assert seen_by_browser
    for url, headers, body in seen_by_browser:
        assert KEY not in json.dumps(headers) and KEY.encode() not in body, url
    assert KEY not in page.content()
    assert KEY not in azure_playground.output()


def test_a_dropped_connection_says_so_and_retry_asks_again(page, azure_playground, fake_endpoint, screenshot):
    drop = PausedAnswer(drop=True)
    fake_endpoint.answers.append(drop)
    editor = open_page(page, azure_playground.url)
    editor.fill(PROMPT)
    editor.press("Tab")
    expect(page.locator('.suggestion[data-state="streaming"]')).to_have_count(SUGGESTIONS, timeout=WAIT_MS)
    drop.release.set()

    problem = page.locator("#problem")
    expect(problem).to_be_visible(timeout=WAIT_MS)
    expect(problem).to_contain_text("The connection dropped")
    expect(page.locator('.suggestion[data-state="dropped"]')).to_have_count(SUGGESTIONS)
    assert page.locator(".suggestion-text").all_text_contents() == [" one"] * SUGGESTIONS  # what came is kept
    expect(editor).to_be_editable()
    screenshot("dropped")

    page.get_by_role("button", name="Retry").click()
    assert wait_for_suggestions(page) == [" one two three"] * SUGGESTIONS
    expect(problem).to_be_hidden()
    assert fake_endpoint.received[0].body == fake_endpoint.received[1].body
    screenshot("retried")


def test_the_page_stays_usable_while_suggestions_stream_and_stop_ends_them(
    page, azure_playground, fake_endpoint, screenshot
):
    paused = PausedAnswer()
    fake_endpoint.answers.append(paused)
    editor = open_page(page, azure_playground.url)
    editor.fill(PROMPT)
    editor.press("Tab")
    expect(page.locator('.suggestion[data-state="streaming"]')).to_have_count(SUGGESTIONS, timeout=WAIT_MS)
    screenshot("streaming")

    editor.press_sequentially(" and more")  # the answer is still open: the editor still takes text
    expect(editor).to_have_value(PROMPT + " and more")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator('.suggestion[data-state="stopped"]')).to_have_count(SUGGESTIONS)
    expect(page.get_by_role("status")).to_have_text("Stopped.")
    paused.release.set()
    screenshot("stopped")

    # a suggestion goes where it was asked for: after the prompt, before what was typed since
    cards(page).first.get_by_role("button").click()
    expect(editor).to_have_value(PROMPT + " one and more")


def test_a_busy_server_says_when_to_retry(page, azure_playground, fake_endpoint, screenshot):
    error = {"error": "the queue is full; retry later", "field": None, "error_type": "overloaded"}
    fake_endpoint.answers.append(json_answer(429, error, {"Retry-After": "2"}))
    editor = open_page(page, azure_playground.url)
    editor.fill(PROMPT)
    editor.press("Tab")
    problem = page.locator("#problem")
    expect(problem).to_contain_text("HTTP 429: the queue is full; retry later. Retry after 2 s.", timeout=WAIT_MS)
    screenshot("busy")
    page.get_by_role("button", name="Retry").click()
    assert wait_for_suggestions(page) == [" one two three"] * SUGGESTIONS


def test_an_endpoint_that_does_not_stream_fills_the_suggestions_at_once(page, azure_playground, fake_endpoint):
    fake_endpoint.answers.append(json_answer(200, [" first", " second", " third"]))
    editor = open_page(page, azure_playground.url)
    editor.fill(PROMPT)
    editor.press("Tab")
    assert wait_for_suggestions(page) == [" first", " second", " third"]
    expect(page.locator(".suggestion-meta").first).to_have_text("not streamed: the endpoint answered all at once")
