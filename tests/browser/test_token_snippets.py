"""After a token is created, its panel shows first calls (curl, Python, environment lines)
with this server's address and the token; they work as pasted, and Copy copies them."""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import subprocess

import pytest
from playwright.sync_api import expect

from providers import services

from .conftest import field, make_user, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def ready(live_server, upstream, local_upstreams):
    upstream.reply_text = "hello from upstream"
    provider = services.provider_create(
        name="acme", kind="openai", base_url=upstream.base_url + "/v1", api_key="sk-up-0123456789"
    )
    services.default_model_set(provider=provider, model="gpt-4o-mini", actor="test")
    return upstream


def _create_token(page, context, live_server, name="first-app"):
    sign_in(context, live_server, make_user("eddie", "editor"))
    page.goto(f"{live_server.url}/tokens/")
    field(page, "Name").fill(name)
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("Token", exact=True).input_value()
    assert token.startswith("ra-")
    return token


def test_snippets_carry_the_real_address_and_token_and_work(page, context, live_server, ready):
    token = _create_token(page, context, live_server)
    base = f"{live_server.url}/v1"
    curl = page.locator("#snippet-curl").inner_text()
    python = page.locator("#snippet-python").inner_text()
    env = page.locator("#snippet-env").inner_text()
    assert env.splitlines() == [f"OPENAI_BASE_URL={base}", f"OPENAI_API_KEY={token}"]
    assert f'OpenAI(base_url="{base}", api_key="{token}")' in python
    assert curl.startswith(f"curl {base}/chat/completions") and f"Bearer {token}" in curl

    # The Python snippet, run as pasted, reaches the upstream through this server.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(python, {})  # noqa: S102 - the snippet the page shows, run as a user would
    assert out.getvalue().strip() == "hello from upstream"
    assert ready.last.json()["model"] == "gpt-4o-mini"

    # The curl snippet too (its line continuations as a shell reads them).
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: apt-get install -y curl")
    argv = shlex.split(curl.replace("\\\n", " "))
    result = subprocess.run(argv + ["-s", "--fail"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "hello from upstream" in result.stdout


def test_copy_buttons_copy_each_snippet(page, context, live_server, ready):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    _create_token(page, context, live_server)
    for key in ("curl", "python", "env"):
        button = page.locator(f'[data-copy="snippet-{key}"]')
        expect(button).to_be_visible()
        button.click()
        expect(page.locator(f'[data-copied="snippet-{key}"]')).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator(f"#snippet-{key}").inner_text()


def test_without_javascript_the_snippets_are_plain_selectable_text(browser, live_server, ready):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        token = _create_token(page, context, live_server)
        assert token in page.locator("#snippet-env").inner_text()
        # The Copy buttons need JavaScript: hidden rather than broken without it.
        expect(page.locator("[data-copy]").first).to_be_hidden()
    finally:
        context.close()


def test_the_token_is_gone_from_the_page_after_leaving_it(page, context, live_server, ready):
    token = _create_token(page, context, live_server)
    page.goto(f"{live_server.url}/tokens/")
    assert token not in page.content()
    page.go_back()
    assert token not in page.content()  # no-store: the browser asks the server again
