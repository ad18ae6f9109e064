import re

import pytest
from django.urls import reverse

from providers import services
from providers.models import MODEL_CALL_TIMEOUT, Provider
from tests.conftest import SECRET

HX = {"HTTP_HX_REQUEST": "true"}


def _form(**overrides):
    data = {
        "name": "compat",
        "kind": "openai_compatible",
        "base_url": "https://llm.example.com/v1",
        "api_key": SECRET,
        "timeout": "10",
        "max_retries": "0",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_editor_adds_a_provider(client, login_as):
    login_as("editor")
    response = client.post(reverse("provider_add"), _form())
    assert response.status_code == 302 and response["Location"] == "/providers/compat/"
    provider = Provider.objects.get(name="compat")
    assert provider.get_api_key() == SECRET
    assert provider.created_by.username == "editor"


def test_invalid_form_keeps_input_but_never_the_key(client, login_as):
    login_as("editor")
    response = client.post(reverse("provider_add"), _form(base_url="http://169.254.169.254/v1"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "metadata" in html.lower()  # the error sits next to the field
    assert 'value="compat"' in html  # other input kept
    assert SECRET not in html
    assert not Provider.objects.exists()


def test_form_fields_follow_the_kind(client, login_as):
    login_as("editor")
    azure = client.get(reverse("kind_fields"), {"kind": "azure"}, **HX).content.decode()
    assert "API version" in azure and "<html" not in azure
    ollama = client.get(reverse("kind_fields"), {"kind": "ollama"}, **HX).content.decode()
    assert "API version" not in ollama and "http://localhost:11434" in ollama


def test_kind_swap_never_echoes_a_typed_key(client, login_as):
    login_as("editor")
    html = client.get(reverse("kind_fields"), {"kind": "openai", "api_key": SECRET}, **HX)
    assert SECRET not in html.content.decode()


def test_edit_form_is_write_only_for_the_key(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a", headers={"X-Org": "org-secret-value"})
    html = client.get(reverse("provider_edit", args=["a"])).content.decode()
    assert SECRET not in html and "org-secret-value" not in html
    assert "sk-…J9k0" in html and "X-Org" in html


def test_empty_key_on_edit_keeps_the_stored_key(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a")
    data = {
        "name": "a",
        "kind": "openai",
        "base_url": "",
        "api_key": "",
        "timeout": "20",
        "max_retries": "1",
        "enabled": "on",
        "version": "1",
    }
    assert client.post(reverse("provider_edit", args=["a"]), data).status_code == 302
    provider = Provider.objects.get()
    assert provider.get_api_key() == SECRET and provider.timeout == 20


def test_remove_key_choice_clears_it(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a", kind="openai_compatible", base_url="https://llm.example.com/v1")
    data = _form(name="a", api_key="", remove_key="on", version="1")
    assert client.post(reverse("provider_edit", args=["a"]), data).status_code == 302
    assert Provider.objects.get().key_state == "none"


def test_new_host_requires_the_key_again(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a", kind="openai_compatible", base_url="https://llm.example.com/v1")
    data = _form(name="a", base_url="https://attacker.example.net/v1", api_key="", version="1")
    html = client.post(reverse("provider_edit", args=["a"]), data).content.decode()
    assert "enter the API key again" in html
    assert Provider.objects.get().base_url == "https://llm.example.com/v1"


def test_second_editor_save_is_refused(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a")
    stale = {
        "name": "a",
        "kind": "openai",
        "api_key": "",
        "timeout": "10",
        "max_retries": "0",
        "enabled": "on",
        "version": "1",
    }
    client.post(reverse("provider_edit", args=["a"]), {**stale, "timeout": "20"})
    html = client.post(reverse("provider_edit", args=["a"]), {**stale, "timeout": "30"})
    assert "while you were editing" in html.content.decode()
    assert Provider.objects.get().timeout == 20


def test_removing_the_default_provider_is_refused_with_a_message(client, login_as, make_provider):
    login_as("editor")
    services.default_model_set(provider=make_provider(name="a"), model="m")
    response = client.post(reverse("provider_remove", args=["a"]), follow=True)
    assert "Switch the default" in response.content.decode()
    assert Provider.objects.filter(name="a").exists()


def test_remove(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a")
    assert client.post(reverse("provider_remove", args=["a"])).status_code == 302
    assert not Provider.objects.exists()


@pytest.mark.parametrize("headers", [{}, HX])
@pytest.mark.parametrize(
    "method, url",
    [
        ("get", reverse("provider_add")),
        ("post", reverse("provider_add")),
        ("get", reverse("provider_edit", args=["a"])),
        ("post", reverse("provider_edit", args=["a"])),
        ("post", reverse("provider_remove", args=["a"])),
        ("get", reverse("kind_fields")),
    ],
)
def test_viewer_gets_403_on_every_editing_page(
    client, login_as, make_provider, method, url, headers
):
    login_as("viewer")
    make_provider(name="a")
    response = getattr(client, method)(url, _form(name="a"), **headers)
    assert response.status_code == 403
    assert Provider.objects.get().timeout == MODEL_CALL_TIMEOUT  # the form said 10


def test_viewer_may_test_and_sees_result_partial(client, login_as, make_provider, upstream):
    login_as("viewer")
    upstream.models = ["m1", "m2", "m3"]
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    html = client.post(reverse("provider_test", args=["a"]), **HX).content.decode()
    assert "<html" not in html
    assert "ok ·" in html and " ms" in html and "3 models found" in html


def test_test_failure_shows_redacted_error(client, login_as, make_provider, upstream):
    login_as("viewer")
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    upstream.fail_next(401, {"error": {"message": f"Invalid key {SECRET}"}})
    html = client.post(reverse("provider_test", args=["a"]), **HX).content.decode()
    assert "HTTP 401" in html and SECRET not in html


def test_test_without_javascript_redirects_back_with_message(
    client, login_as, make_provider, upstream
):
    login_as("viewer")
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    response = client.post(reverse("provider_test", args=["a"]), {"next": "/"}, follow=True)
    assert b"a: OK" in response.content


def test_test_all_with_htmx_lists_every_enabled_provider(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="a")
    make_provider(name="b", enabled=False)
    html = client.post(reverse("test_all"), **HX).content.decode()
    assert "/providers/a/test/" in html and "/providers/b/test/" not in html
    assert "<progress" in html


@pytest.mark.django_db(transaction=True)
def test_test_all_without_javascript_tests_concurrently(
    client, login_as, make_provider, upstream_factory
):
    login_as("viewer")
    good, bad = upstream_factory("good"), upstream_factory("bad")
    bad.fail_next(500, times=5)
    make_provider(name="good", base_url=good.base_url + "/v1")
    make_provider(name="bad", base_url=bad.base_url + "/v1")
    response = client.post(reverse("test_all"), follow=True)
    assert "1 of 2 failed: bad" in response.content.decode()
    assert Provider.objects.get(name="good").last_test_ok is True


def _buttons(html: str) -> list[tuple[str, str]]:
    """What a screen reader says for each button: its name, then its description (the text
    of the elements its aria-describedby names)."""
    buttons = []
    for attrs, inner in re.findall(r"<button\b([^>]*)>(.*?)</button>", html, re.S):
        name = " ".join(re.sub(r"<[^>]+>", "", inner).split())
        described = re.search(r'aria-describedby="([^"]+)"', attrs)
        description = ""
        if described:
            found = re.search(rf'id="{described.group(1)}"[^>]*>(.*?)</', html, re.S)
            description = " ".join(found.group(1).split()) if found else ""
        buttons.append((name, description))
    return buttons


def test_each_rows_test_button_says_which_provider(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="a")
    make_provider(name="b")
    # The name stays exactly "Test connection" (scripts and tests rely on it); the
    # description tells rows apart.
    buttons = _buttons(client.get("/").content.decode())
    assert ("Test connection", "of a") in buttons and ("Test connection", "of b") in buttons
    detail = _buttons(client.get(reverse("provider_detail", args=["a"])).content.decode())
    assert ("Test connection", "of a") in detail


def test_the_routing_switchs_save_button_says_what_it_saves(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a")
    buttons = _buttons(client.get(reverse("provider_detail", args=["a"])).content.decode())
    assert ("Save", "the routing switch of a") in buttons


def test_the_health_cells_are_not_live_regions(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="a")
    make_provider(name="b")
    html = client.get("/").content.decode()
    # The page's messages and "Test all"'s progress; no cell of the table.
    assert re.findall(r'<(\w+) id="([^"]+)" aria-live="polite"', html) == [
        ("div", "messages"),
        ("div", "test-all"),
    ]
    assert html.count("aria-live") == 2


def test_a_single_tests_outcome_is_announced_in_the_messages(
    client, login_as, make_provider, upstream
):
    login_as("viewer")
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    html = client.post(reverse("provider_test", args=["a"]), **HX).content.decode()
    assert html.lstrip().startswith('<span class="test-result" id="test-a"')
    oob = html[html.index('<div hx-swap-oob="innerHTML:#messages">') :]
    assert 'role="status"' in oob and "a: OK: 2 models found in" in oob
    # From "Test all" only the progress summary speaks.
    batch = client.post(reverse("provider_test", args=["a"]), {"scope": "all"}, **HX)
    assert "hx-swap-oob" not in batch.content.decode()


def test_detail_page_escapes_and_hides_secrets(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="a", headers={"X-Org": "org-secret-value"})
    html = client.get(reverse("provider_detail", args=["a"])).content.decode()
    assert SECRET not in html and "org-secret-value" not in html
    assert "Test connection" in html
    assert "Edit</a>" not in html  # viewer
