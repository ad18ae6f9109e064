import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from providers import services
from providers.models import AuditEvent, Provider, RouterSettings, RoutingGroup
from providers.routing import live
from providers.selectors import groups as group_selectors
from providers.services import DeploymentSpec as D
from providers.services import groups as group_services
from providers.services import health
from tests.conftest import SECRET

HX = {"HTTP_HX_REQUEST": "true"}


def _data(name="fast", rows=(), fallbacks="", initial=0, **extra):
    """The editor's POST body: group fields plus the formset's management form and rows."""
    data = {
        "name": name,
        "description": "",
        "fallbacks": fallbacks,
        "deployments-TOTAL_FORMS": str(len(rows)),
        "deployments-INITIAL_FORMS": str(initial),
        "deployments-MIN_NUM_FORMS": "0",
        "deployments-MAX_NUM_FORMS": "20",
    }
    for i, row in enumerate(rows):
        for field, value in {"weight": "1", "ORDER": str(i + 1), **row}.items():
            data[f"deployments-{i}-{field}"] = value
    data.update(extra)
    return data


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def _saved(name):
    group = RoutingGroup.objects.get(name=name)
    return (
        [str(d) for d in group.deployments.select_related("provider")],
        [link.fallback.name for link in group.fallback_links.select_related("fallback")],
    )


@pytest.fixture
def servers(upstream_factory, make_provider):
    a, b = upstream_factory("a"), upstream_factory("b")
    make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pb", base_url=b.base_url + "/v1")
    return a, b


def test_empty_state_explains_groups_and_offers_add_to_editors(client, login_as):
    login_as("viewer")
    html = client.get(reverse("group_list")).content.decode()
    assert "No routing groups yet" in html and "fallback" in html
    assert "Add group" not in html
    login_as("editor", username="ed")
    html = client.get(reverse("group_list")).content.decode()
    assert "Add group" in html and 'href="/groups/add/"' in html


def test_list_shows_health_and_broken_groups(client, login_as, servers):
    login_as("viewer")
    services.provider_test(provider=Provider.objects.get(name="pa"))
    services.group_save(
        name="fast", deployments=[D("pa", "m1"), D("pb", "m2")], description="<b>quick</b>"
    )
    services.group_save(name="dead", deployments=[D("pb", "m")])
    services.group_save(name="empty", deployments=[])
    services.provider_update(provider=Provider.objects.get(name="pb"), enabled=False)
    html = client.get(reverse("group_list")).content.decode()
    assert "&lt;b&gt;quick&lt;/b&gt;" in html and "<b>quick" not in html
    fast, dead, empty = (
        html.split(f'id="group-{name}"')[1].split("</section>")[0]
        for name in ("fast", "dead", "empty")
    )
    assert "ok ·" in fast and "never tested" in fast  # pa tested, pb not
    assert "provider disabled" in fast and "broken" not in fast
    assert "broken" in dead and "every provider it uses is disabled" in dead
    assert "broken" in empty and "it has none" in empty
    # One provider in two groups: its health badge ids stay unique.
    ids = re.findall(r'id="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def test_list_page_queries_do_not_grow_with_groups(
    client, login_as, servers, django_assert_max_num_queries
):
    login_as("viewer")
    services.group_save(name="g0", deployments=[D("pa", "m"), D("pb", "m")])
    with CaptureQueriesContext(connection) as one_group:
        client.get(reverse("group_list"))
    for n in range(1, 6):
        services.group_save(
            name=f"g{n}", deployments=[D("pa", "m"), D("pb", "m")], fallbacks=[f"g{n - 1}"]
        )
    with django_assert_max_num_queries(len(one_group)):
        response = client.get(reverse("group_list"))
    assert response.content.decode().count("Test group</button>") == 6


def test_editor_creates_a_group(client, login_as, servers):
    login_as("editor")
    services.provider_test(provider=Provider.objects.get(name="pa"))
    form = client.get(reverse("group_add")).content.decode()
    pa = Provider.objects.get(name="pa")
    assert "Add another deployment" in form and 'name="deployments-TOTAL_FORMS"' in form
    assert f'<datalist id="models-{pa.pk}"><option value="a-model-a">' in form
    rows = [
        {"provider": "pa", "model": "m1", "weight": "3", "rpm": "60"},
        {"provider": "pb", "model": "m2", "timeout": "5"},
        {"provider": "", "model": ""},  # the untouched empty row is skipped
    ]
    response = client.post(reverse("group_add"), _data(rows=rows))
    assert response.status_code == 302 and response["Location"] == "/groups/#group-fast"
    assert _saved("fast") == (["pa/m1", "pb/m2"], [])
    first = RoutingGroup.objects.get(name="fast").deployments.first()
    assert (first.weight, first.rpm, first.timeout) == (3, 60, None)
    assert AuditEvent.objects.filter(action="group.create", actor_name="editor").exists()


def test_edit_reorders_removes_and_sets_fallbacks(client, login_as, servers):
    login_as("editor")
    services.group_save(name="slow", deployments=[D("pb", "big")])
    services.group_save(name="fast", deployments=[D("pa", "m1"), D("pb", "m2"), D("pa", "m3")])
    html = client.get(reverse("group_edit", args=["fast"])).content.decode()
    assert 'value="m3"' in html and 'name="version" value="1"' in html
    rows = [
        {"provider": "pa", "model": "m1", "ORDER": "2"},
        {"provider": "pb", "model": "m2", "ORDER": "1"},
        {"provider": "pa", "model": "m3", "DELETE": "on"},
    ]
    data = _data(rows=rows, initial=3, fallbacks="slow", version="1")
    response = client.post(reverse("group_edit", args=["fast"]), data)
    assert response.status_code == 302
    assert _saved("fast") == (["pb/m2", "pa/m1"], ["slow"])
    assert RoutingGroup.objects.get(name="fast").version == 2
    # The form now shows the saved order, with the next version.
    html = client.get(reverse("group_edit", args=["fast"])).content.decode()
    assert html.index('value="m2"') < html.index('value="m1"')
    assert 'value="slow"' in html and 'name="version" value="2"' in html


def test_stale_version_is_refused(client, login_as, servers):
    login_as("editor")
    group = services.group_save(name="fast", deployments=[D("pa", "m1")])
    services.group_save(group=group, name="fast", deployments=[D("pb", "theirs")])
    data = _data(rows=[{"provider": "pa", "model": "mine"}], initial=1, version="1")
    response = client.post(reverse("group_edit", args=["fast"]), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Someone else changed group" in html and 'value="mine"' in html
    assert _saved("fast") == (["pb/theirs"], [])


def test_fallback_loop_is_shown_next_to_fallbacks_and_nothing_is_saved(client, login_as, servers):
    login_as("editor")
    services.group_save(name="a", deployments=[D("pa", "m")])
    services.group_save(name="b", deployments=[D("pb", "m")], fallbacks=["a"])
    rows = [{"provider": "pa", "model": "changed"}]
    data = _data(name="a", rows=rows, initial=1, fallbacks="b", version="1")
    html = client.post(reverse("group_edit", args=["a"]), data).content.decode()
    loop = group_services.FALLBACK_LOOP.format(path="a → b → a")
    errors = html.split('<ul class="errorlist" id="id_fallbacks_error">')[1].split("</ul>")[0]
    assert loop in errors and 'aria-describedby="id_fallbacks_helptext id_fallbacks_error"' in html
    assert 'name="fallbacks" value="b"' in html and 'value="changed"' in html
    assert _saved("a") == (["pa/m"], [])


def test_markup_in_name_and_model_is_refused_next_to_the_field_and_escaped(
    client, login_as, servers
):
    login_as("editor")
    rows = [
        {"provider": "pa", "model": "fine"},
        {"provider": "pb", "model": "<script>x</script>"},
    ]
    html = client.post(reverse("group_add"), _data(name="<b>g</b>", rows=rows)).content.decode()
    assert "<script>x" not in html and "<b>g" not in html
    assert 'name="name" value="&lt;b&gt;g&lt;/b&gt;"' in html
    assert 'value="&lt;script&gt;x&lt;/script&gt;"' in html
    assert 'id="id_name_error"' in html and 'id="id_deployments-1-model_error"' in html
    assert 'id="id_deployments-0-model_error"' not in html
    assert not RoutingGroup.objects.exists()


def test_service_errors_about_a_deployment_sit_on_its_row(client, login_as, servers):
    login_as("editor")
    rows = [
        {"provider": "pa", "model": "m", "ORDER": "3"},
        {"provider": "pb", "model": "m", "ORDER": "1"},
        {"provider": "pa", "model": "m", "ORDER": "2"},
    ]
    html = client.post(reverse("group_add"), _data(rows=rows)).content.decode()
    # Saved in the order 2, 3, 1: the repeat is the third saved, the first row on the page.
    repeat = group_services.DUPLICATE_DEPLOYMENT.format(n=3, label="pa/m")
    first_row = html.split("<legend>Deployment 1</legend>")[1].split("</fieldset>")[0]
    # Once on its row, and once in the summary at the top, linking to that row.
    summary = html.split('id="error-summary"')[1].split("</div>")[0]
    assert repeat in first_row and html.count(repeat) == 2
    assert f'<a href="#id_deployments-0-provider">Deployment 1: {repeat}</a>' in summary
    assert not RoutingGroup.objects.exists()


def test_add_another_deployment_keeps_input_without_saving_or_complaining(
    client, login_as, servers
):
    login_as("editor")
    # Unfinished: no name yet, a provider without a model. Nothing to complain about yet.
    data = _data(name="", rows=[{"provider": "pa", "model": "", "rpm": "7"}], _add="1")
    response = client.post(reverse("group_add"), data)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert 'name="deployments-TOTAL_FORMS" value="2"' in html
    assert "<legend>Deployment 2</legend>" in html and 'name="deployments-0-rpm" value="7"' in html
    assert "errorlist" not in html and 'aria-invalid="true"' not in html
    assert not RoutingGroup.objects.exists()
    partial = client.post(reverse("group_add"), data, **HX).content.decode()
    assert "<html" not in partial and '<fieldset id="deployments">' in partial
    assert "<legend>Deployment 2</legend>" in partial and "autofocus" in partial


def test_choosing_a_provider_brings_its_model_suggestions(client, login_as, servers):
    login_as("editor")
    services.provider_test(provider=Provider.objects.get(name="pb"))
    pb = Provider.objects.get(name="pb")
    data = _data(rows=[{"provider": "pb", "model": ""}], _refresh="1")
    partial = client.post(reverse("group_add"), data, **HX).content.decode()
    assert "<html" not in partial and "errorlist" not in partial
    assert f'list="models-{pb.pk}"' in partial
    assert f'<datalist id="models-{pb.pk}"><option value="b-model-a">' in partial
    assert not RoutingGroup.objects.exists()


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", reverse("group_add")),
        ("post", reverse("group_add")),
        ("get", reverse("group_edit", args=["fast"])),
        ("post", reverse("group_edit", args=["fast"])),
        ("post", reverse("group_remove", args=["fast"])),
        ("get", reverse("router_settings")),
        ("post", reverse("router_settings")),
    ],
)
def test_viewer_gets_403_on_every_editing_page(client, login_as, servers, method, url, headers):
    login_as("viewer")
    services.group_save(name="fast", deployments=[D("pa", "m")])
    body = _data(
        name="fast", rows=[{"provider": "pb", "model": "x"}], routing_strategy="least-busy"
    )
    response = getattr(client, method)(url, body, **headers)
    assert response.status_code == 403
    assert _saved("fast") == (["pa/m"], [])
    assert not RouterSettings.objects.exists()


def test_viewer_may_test_a_group_and_sees_who_answered(client, login_as, servers):
    a, _ = servers
    login_as("viewer")
    services.group_save(name="fast", deployments=[D("pa", "m")])
    html = client.post(reverse("group_test", args=["fast"]), **HX).content.decode()
    assert "<html" not in html and 'id="group-test-fast"' in html
    assert "answered by pa/m" in html and re.search(r"ok · \d+ ms", html)
    sent = a.last.json()
    assert sent["model"] == "m" and sent["max_tokens"] == 1


def test_test_group_without_javascript_redirects_back_with_message(client, login_as, servers):
    login_as("viewer")
    services.group_save(name="fast", deployments=[D("pb", "m")])
    response = client.post(reverse("group_test", args=["fast"]), {"next": "/groups/"}, follow=True)
    assert response.redirect_chain == [("/groups/", 302)]
    assert re.search(r"fast: answered by pb/m in \d+ ms", response.content.decode())


def test_test_of_a_broken_group_says_why(client, login_as, servers):
    login_as("viewer")
    services.group_save(name="fast", deployments=[D("pa", "m")])
    services.provider_update(provider=Provider.objects.get(name="pa"), enabled=False)
    html = client.post(reverse("group_test", args=["fast"]), **HX).content.decode()
    assert "error" in html and "has no enabled deployment" in html


def test_test_failure_is_redacted(client, login_as, servers):
    a, _ = servers
    login_as("viewer")
    services.group_save(name="fast", deployments=[D("pa", "m")])
    a.fail_next(401, {"error": {"message": f"Invalid key {SECRET}"}}, times=10)
    html = client.post(reverse("group_test", args=["fast"]), **HX).content.decode()
    assert "badge-error" in html and "fast" in html
    assert SECRET not in html


def _last_test(html: str, name: str) -> str:
    match = re.search(
        rf'<span class="test-result" id="group-test-{name}">(.*?)</span>\s*</div>', html, re.S
    )
    assert match, f"no test result for {name}"
    return _text(match.group(1)).strip()


def test_the_last_group_test_is_shown_after_a_reload(client, login_as, servers):
    login_as("viewer")
    services.group_save(name="fast", deployments=[D("pa", "m")])
    services.group_save(name="slow", deployments=[D("pb", "m")])
    assert _last_test(client.get(reverse("group_list")).content.decode(), "fast") == "never tested"

    client.post(reverse("group_test", args=["fast"]), **HX)

    html = client.get(reverse("group_list")).content.decode()
    assert re.fullmatch(r"ok · \d+ ms answered by pa/m · just now", _last_test(html, "fast"))
    assert _last_test(html, "slow") == "never tested"


def test_a_failed_group_test_is_shown_after_a_reload_without_the_secret(client, login_as, servers):
    a, _ = servers
    login_as("viewer")
    services.group_save(name="fast", deployments=[D("pa", "m")])
    a.fail_next(401, {"error": {"message": f"Invalid key {SECRET}"}}, times=10)
    client.post(reverse("group_test", args=["fast"]), {"next": "/groups/"})

    html = client.get(reverse("group_list")).content.decode()
    shown = _last_test(html, "fast")
    assert shown.startswith("error · ") and "Invalid key" in shown and shown.endswith("just now")
    assert "failed with HTTP 401" in shown
    assert "failed with HTTP 401" in RoutingGroup.objects.get(name="fast").last_test_message
    assert SECRET not in html


def test_router_settings_update_persists_and_is_audited(client, login_as):
    login_as("editor")
    html = client.get(reverse("router_settings")).content.decode()
    assert "Routing strategy" in html and "Lowest latency" in html
    data = {
        "routing_strategy": "latency-based-routing",
        "num_retries": "2",
        "timeout": "30",
        "cooldown_time": "10",
        "allowed_fails": "1",
    }
    response = client.post(reverse("router_settings"), data)
    assert response.status_code == 302 and response["Location"] == "/groups/"
    saved = RouterSettings.objects.get()
    assert (saved.routing_strategy, saved.num_retries, saved.timeout) == (
        "latency-based-routing",
        2,
        30.0,
    )
    event = AuditEvent.objects.get(action="router.update")
    assert event.actor_name == "editor"
    assert event.changes["routing_strategy"] == ["simple-shuffle", "latency-based-routing"]


def test_router_settings_take_a_timeout_up_to_the_models_limit(client, login_as):
    login_as("editor")
    html = client.get(reverse("router_settings")).content.decode()
    assert 'max="3600"' in re.search(r'<input[^>]*id="id_timeout"[^>]*>', html)[0]
    data = {
        "routing_strategy": "simple-shuffle",
        "num_retries": "0",
        "timeout": "3600",
        "cooldown_time": "10",
        "allowed_fails": "1",
    }
    assert client.post(reverse("router_settings"), data).status_code == 302
    assert RouterSettings.objects.get().timeout == 3600


def test_router_settings_errors_keep_input(client, login_as):
    login_as("editor")
    data = {
        "routing_strategy": "least-busy",
        "num_retries": "99",
        "timeout": "30",
        "cooldown_time": "10",
        "allowed_fails": "1",
    }
    html = client.post(reverse("router_settings"), data).content.decode()
    assert 'id="id_num_retries_error"' in html and 'value="99"' in html
    assert not RouterSettings.objects.exists()


def test_remove_group_and_refusal_as_message(client, login_as, servers):
    login_as("editor")
    services.group_save(name="a", deployments=[D("pa", "m")])
    services.group_save(name="b", deployments=[D("pb", "m")], fallbacks=["a"])
    edit = client.get(reverse("group_edit", args=["a"])).content.decode()
    assert "hx-confirm=" in edit and "Remove group</button>" in edit
    response = client.post(reverse("group_remove", args=["a"]), follow=True)
    assert response.redirect_chain == [("/groups/a/", 302)]
    assert "Groups b fall back to" in response.content.decode()
    response = client.post(reverse("group_remove", args=["b"]), follow=True)
    assert response.redirect_chain == [("/groups/", 302)]
    assert "Removed group b." in response.content.decode()
    assert list(RoutingGroup.objects.values_list("name", flat=True)) == ["a"]


def _taken_out(html: str, group: str) -> dict[str, bool]:
    """Each deployment of the group's card, and whether it is shown as taken out for health."""
    card = html.split(f'id="group-{group}"')[1].split("</section>")[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", card.split("<tbody>")[1], re.S):
        provider, model = re.search(r">([^<]+)</a>/<code>([^<]+)</code>", row).groups()
        rows[f"{provider}/{model}"] = group_selectors.DRAINED in _text(row)
    return rows


def _serving(group: str) -> list[str]:
    return [d.label for d in live.snapshot().groups[group].deployments]


@pytest.fixture
def pa_unhealthy(servers, settings):
    """pa fails once, which is enough to be unhealthy; the caller chooses its switch."""
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 1
    a, _ = servers
    a.fail_next(500)
    services.provider_test(provider=Provider.objects.get(name="pa"), actor="tester")
    assert Provider.objects.get(name="pa").unhealthy_since is not None
    return Provider.objects.get(name="pa")


def test_list_shows_a_deployment_taken_out_for_health(client, login_as, pa_unhealthy):
    login_as("viewer")
    services.group_save(name="fast", deployments=[D("pa", "m1"), D("pb", "m2")])
    health.provider_drain_set(provider=pa_unhealthy, drain_when_unhealthy=True)
    html = client.get(reverse("group_list")).content.decode()
    assert _taken_out(html, "fast") == {"pa/m1": True, "pb/m2": False}
    assert _serving("fast") == ["pb/m2"]  # what the router really does
    assert "broken" not in html.split('id="group-fast"')[1].split("</section>")[0]


def test_a_group_that_would_be_left_empty_keeps_its_unhealthy_deployment(
    client, login_as, pa_unhealthy
):
    login_as("viewer")
    services.group_save(name="solo", deployments=[D("pa", "m")])
    # pb serves no calls while disabled: pa is all that "mixed" has left.
    services.group_save(name="mixed", deployments=[D("pa", "m"), D("pb", "m")])
    services.provider_update(provider=Provider.objects.get(name="pb"), enabled=False)
    health.provider_drain_set(provider=pa_unhealthy, drain_when_unhealthy=True)
    html = client.get(reverse("group_list")).content.decode()
    assert _taken_out(html, "solo") == {"pa/m": False}
    assert _taken_out(html, "mixed") == {"pa/m": False, "pb/m": False}
    assert _serving("solo") == _serving("mixed") == ["pa/m"]


def test_the_default_models_provider_is_never_shown_taken_out(client, login_as, pa_unhealthy):
    login_as("viewer")
    services.group_save(name="fast", deployments=[D("pa", "m1"), D("pb", "m2")])
    services.default_model_set(provider=pa_unhealthy, model="m1", actor="tester")
    health.provider_drain_set(provider=pa_unhealthy, drain_when_unhealthy=True)
    html = client.get(reverse("group_list")).content.decode()
    assert _taken_out(html, "fast") == {"pa/m1": False, "pb/m2": False}
    assert _serving("fast") == ["pa/m1", "pb/m2"]


def test_without_the_switch_an_unhealthy_deployment_is_not_shown_taken_out(
    client, login_as, pa_unhealthy
):
    login_as("viewer")
    services.group_save(name="fast", deployments=[D("pa", "m1"), D("pb", "m2")])
    html = client.get(reverse("group_list")).content.decode()
    fast = html.split('id="group-fast"')[1].split("</section>")[0]
    assert "unhealthy</span>" in fast  # its health says so, but it still serves
    assert _taken_out(html, "fast") == {"pa/m1": False, "pb/m2": False}
    assert _serving("fast") == ["pa/m1", "pb/m2"]
