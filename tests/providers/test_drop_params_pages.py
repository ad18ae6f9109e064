"""The "drop parameters" switches on the provider form and the group form: shown with their
label, saved, audited, and shown again when the form is edited."""

import re

from django.urls import reverse

from providers import services
from providers.models import AuditEvent, Provider, RoutingGroup
from providers.services import DeploymentSpec as D
from tests.conftest import SECRET
from tests.providers.test_group_pages import _data

PROVIDER_LABEL = "Drop parameters this provider does not support"
GROUP_LABEL = "Drop parameters a deployment's provider does not support"


def _checkbox(html: str, label: str) -> str:
    """The checkbox input that the label names (its `for`)."""
    found = re.search(r'<label for="([^"]+)"[^>]*>' + re.escape(label.replace("'", "&#x27;")), html)
    assert found, f"no label {label!r}"
    return re.search(r'<input[^>]*id="' + found[1] + r'"[^>]*>', html)[0]


def test_the_provider_form_offers_and_saves_drop_params(client, login_as, local_upstreams):
    login_as("editor")
    form = client.get(reverse("provider_add")).content.decode()
    box = _checkbox(form, PROVIDER_LABEL)
    assert 'type="checkbox"' in box and "checked" not in box
    assert 'aria-describedby="id_drop_params_helptext"' in box
    assert 'value="600"' in form  # model calls default to 600 s
    data = {
        "name": "claude",
        "kind": "anthropic",
        "base_url": "",
        "api_key": SECRET,
        "timeout": "600",
        "max_retries": "0",
        "drop_params": "on",
        "enabled": "on",
    }
    assert client.post(reverse("provider_add"), data).status_code == 302
    provider = Provider.objects.get(name="claude")
    assert provider.drop_params is True
    edit = client.get(reverse("provider_edit", args=["claude"])).content.decode()
    assert "checked" in _checkbox(edit, PROVIDER_LABEL)
    del data["drop_params"]
    data.update(api_key="", version=str(provider.version))
    assert client.post(reverse("provider_edit", args=["claude"]), data).status_code == 302
    assert Provider.objects.get(name="claude").drop_params is False
    update = AuditEvent.objects.get(action="provider.update", target="claude")
    assert update.changes["drop_params"] == [True, False]


def test_the_group_form_offers_and_saves_drop_params(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="pa", base_url="https://api.example.com/v1")
    assert "checked" not in _checkbox(
        client.get(reverse("group_add")).content.decode(), GROUP_LABEL
    )
    rows = [{"provider": "pa", "model": "m1"}]
    response = client.post(reverse("group_add"), _data(rows=rows, drop_params="on"))
    assert response.status_code == 302
    assert RoutingGroup.objects.get(name="fast").drop_params is True
    edit = client.get(reverse("group_edit", args=["fast"])).content.decode()
    assert "checked" in _checkbox(edit, GROUP_LABEL)


def test_saving_a_group_without_the_switch_keeps_it_unless_told(db, make_provider):
    make_provider(name="pa", base_url="https://api.example.com/v1")
    group = services.group_save(name="fast", deployments=[D("pa", "m")], drop_params=True)
    group = services.group_save(name="fast", deployments=[D("pa", "n")], group=group)
    assert group.drop_params is True
    group = services.group_save(
        name="fast", deployments=[D("pa", "n")], group=group, drop_params=False
    )
    assert RoutingGroup.objects.get(name="fast").drop_params is False
