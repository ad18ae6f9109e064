"""Seconds are shown without stray decimals in the forms ("600", not "600.0")."""

from providers import services


def test_provider_and_router_forms_show_whole_seconds(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="acme", timeout=60.0)
    html = client.get("/providers/acme/edit/").content.decode()
    assert 'name="timeout" value="60"' in html and "60.0" not in html
    services.router_settings_update(timeout=30.0, cooldown_time=5.0)
    html = client.get("/groups/router/").content.decode()
    assert 'name="timeout" value="30"' in html and 'name="cooldown_time" value="5"' in html


def test_fractions_are_kept(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="acme", timeout=2.5)
    assert 'name="timeout" value="2.5"' in client.get("/providers/acme/edit/").content.decode()


def test_no_form_label_ends_with_a_colon(client, login_as, make_provider):
    import re

    login_as("admin")
    make_provider(name="acme")
    pages = ["/", "/providers/add/", "/providers/acme/edit/", "/groups/add/", "/groups/router/"]
    pages += ["/tokens/", "/config/import/", "/config/env/", "/users/", "/usage/", "/audit/"]
    for path in pages:
        html = client.get(path).content.decode()
        labels = re.findall(r"<label[^>]*>(.*?)</label>", html, flags=re.S)
        assert labels, path
        assert [label for label in labels if label.strip().endswith(":")] == [], path
