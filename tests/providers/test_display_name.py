"""Display names: set on the form and the command line, audited, shown where a provider is
named; model addresses keep using the name."""

import pytest
from django.core.management import CommandError
from django.urls import reverse

from providers.management.commands.routing import EDIT_NOTHING
from providers.models import AuditEvent, Provider
from tests.conftest import SECRET
from tests.providers.test_cli import routing


def _form(**overrides):
    data = {
        "name": "together",
        "display_name": "Together (Acme account)",
        "kind": "together",
        "base_url": "",
        "api_key": SECRET,
        "timeout": "10",
        "max_retries": "0",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_the_form_has_a_labelled_display_name_field(client, login_as):
    login_as("editor")
    html = client.get(reverse("provider_add")).content.decode()
    assert '<label for="id_display_name">Display name</label>' in html


def test_the_form_sets_and_changes_it_and_the_audit_says_so(client, login_as, local_upstreams):
    login_as("editor")
    assert client.post(reverse("provider_add"), _form()).status_code == 302
    provider = Provider.objects.get(name="together")
    assert provider.display_name == "Together (Acme account)"
    data = _form(display_name="Together", api_key="", version=str(provider.version))
    assert client.post(reverse("provider_edit", args=["together"]), data).status_code == 302
    assert Provider.objects.get(name="together").display_name == "Together"
    update = AuditEvent.objects.get(action="provider.update")
    assert update.changes == {"display_name": ["Together (Acme account)", "Together"]}


def test_pages_show_the_display_name_and_address_by_name(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="together", kind="together", display_name="Together (Acme account)")
    detail = client.get(reverse("provider_detail", args=["together"])).content.decode()
    assert "<h1>Together (Acme account)</h1>" in detail
    assert "<code>together/&lt;model id&gt;</code>" in detail
    overview = client.get(reverse("overview")).content.decode()
    assert '>Together (Acme account)</a> <code class="muted">together</code>' in overview
    assert ">Together (Acme account)</option>" in overview
    # The filter finds it by either.
    assert "Together (Acme account)" in client.get(reverse("overview") + "?q=acme").content.decode()


def test_without_a_display_name_pages_show_the_name(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="openai-prod")
    detail = client.get(reverse("provider_detail", args=["openai-prod"])).content.decode()
    assert "<h1>openai-prod</h1>" in detail


def test_a_display_name_longer_than_100_characters_is_refused(client, login_as):
    login_as("editor")
    response = client.post(reverse("provider_add"), _form(display_name="x" * 101))
    assert response.status_code == 200
    assert not Provider.objects.exists()


@pytest.fixture
def cli(db, local_upstreams, monkeypatch):
    monkeypatch.setenv("TOGETHER_KEY", SECRET)
    return routing


def test_the_cli_adds_and_edits_it(cli):
    cli(
        "provider", "add", "--name", "together", "--kind", "together",
        "--display-name", "Together (Acme)", "--api-key-env", "TOGETHER_KEY",
    )  # fmt: skip
    assert Provider.objects.get(name="together").display_name == "Together (Acme)"
    assert "display name: Together (Acme)" in cli("provider", "show", "together")
    out = cli("provider", "edit", "together", "--display-name", "Together")
    assert out.strip() == "Changed provider together (Together)."
    assert Provider.objects.get(name="together").display_name == "Together"
    cli("provider", "edit", "together", "--display-name", "")
    assert Provider.objects.get(name="together").display_name == ""
    events = AuditEvent.objects.filter(action="provider.update").order_by("id")
    assert [e.changes for e in events] == [
        {"display_name": ["Together (Acme)", "Together"]},
        {"display_name": ["Together", ""]},
    ]


def test_the_cli_edit_needs_something_to_change(cli):
    cli("provider", "add", "--name", "together", "--kind", "together", "--api-key-env",
        "TOGETHER_KEY")  # fmt: skip
    with pytest.raises(CommandError, match=EDIT_NOTHING):
        cli("provider", "edit", "together")
