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
