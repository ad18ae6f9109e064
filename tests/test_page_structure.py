"""Every dashboard page has exactly one <h1>, and its headings never skip a level."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from accounts.services import team_create
from gateway.services import token_create
from providers import services
from providers.services import DeploymentSpec as D


class _Headings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.levels: list[int] = []

    def handle_starttag(self, tag, attrs):
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.levels.append(int(tag[1]))


def _levels(html: str) -> list[int]:
    parser = _Headings()
    parser.feed(html)
    return parser.levels


def _assert_structure(url: str, html: str) -> None:
    levels = _levels(html)
    assert levels.count(1) == 1, (url, levels)
    assert levels[0] == 1, (url, levels)
    for before, after in zip(levels, levels[1:], strict=False):
        assert after <= before + 1, (url, levels)


@pytest.fixture
def admin_with_everything(client, login_as, make_provider):
    login_as("admin")
    provider = make_provider(name="acme")
    services.group_save(name="fast", deployments=[D("acme", "gpt-4o-mini")])
    services.default_model_set(provider=provider, model="gpt-4o-mini", actor="test")
    red = team_create(name="red", allowed_models=["fast"], actor="test")
    token_create(name="app", actor="test")
    token_create(name="red-app", team=red, actor="test")
    return client


PAGES = [
    reverse("overview"),
    reverse("provider_add"),
    reverse("provider_detail", args=["acme"]),
    reverse("provider_edit", args=["acme"]),
    reverse("group_list"),
    reverse("group_add"),
    reverse("router_settings"),
    reverse("group_edit", args=["fast"]),
    reverse("config_import"),
    reverse("env_import"),
    reverse("token_list"),
    reverse("token_detail", args=["app"]),
    reverse("team_token_detail", args=["red", "red-app"]),
    reverse("usage"),
    reverse("audit_log"),
    reverse("users"),
    reverse("team_list"),
    reverse("team_detail", args=["red"]),
]


@pytest.mark.parametrize("url", PAGES)
def test_each_page_has_one_h1_and_ordered_headings(admin_with_everything, url):
    response = admin_with_everything.get(url, secure=True)
    assert response.status_code == 200, url
    _assert_structure(url, response.content.decode())


def test_a_report_page_keeps_one_h1(admin_with_everything):
    url = reverse("env_import")
    response = admin_with_everything.post(
        url, {"text": "GROQ_API_KEY=gsk_FAKE0123456789abcdef\n"}, secure=True
    )
    assert "Preview: what the import would do" in response.content.decode()
    _assert_structure(url, response.content.decode())


@pytest.mark.parametrize("name", ["login", "setup"])
def test_the_pages_before_logging_in_have_one_h1(client, db, name):
    response = client.get(reverse(name), secure=True)
    assert response.status_code == 200, name
    _assert_structure(name, response.content.decode())


def test_a_refused_limits_form_keeps_one_h1(admin_with_everything):
    for url in (reverse("token_detail", args=["app"]), reverse("team_limits", args=["red"])):
        response = admin_with_everything.post(url, {"rpm": "0"}, secure=True)
        assert "Nothing was saved" in response.content.decode(), url
        _assert_structure(url, response.content.decode())


def test_a_new_team_token_page_keeps_one_h1(admin_with_everything):
    url = reverse("team_token_create", args=["red"])
    response = admin_with_everything.post(url, {"name": "red-bot"}, secure=True)
    assert "Copy it now" in response.content.decode()
    _assert_structure(url, response.content.decode())
