"""The dashboard side of health: "Test all" with progress, the default flagged on the
overview, and the provider page's health history chart and routing switch."""

import json
import re
import threading

import pytest
from django.urls import reverse

from providers import services
from providers.models import AuditEvent, Provider
from providers.routing import live
from providers.services import DeploymentSpec as D
from providers.services import health
from providers.services.connection import TEST_ALL_CONCURRENCY
from providers.views import provider as provider_views
from tests.conftest import SECRET

HX = {"HTTP_HX_REQUEST": "true"}


def _ids(html: str) -> list[str]:
    return re.findall(r'\bid="([^"]+)"', html)


def test_test_all_turns_each_enabled_row_to_testing(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="a")
    make_provider(name="b")
    make_provider(name="off", enabled=False)
    overview = client.get("/").content.decode()
    html = client.post(reverse("test_all"), **HX).content.decode()
    assert 'data-test-total="2"' in html and "<progress" in html
    # Out-of-band: each pending cell replaces the table's health cell (same id) ...
    pending = re.findall(r'<span class="test-result" id="(test-[^"]+)" hx-swap-oob', html)
    assert pending == ["test-a", "test-b"]
    assert all(cell in _ids(overview) for cell in pending)
    assert "test-off" not in pending and "/providers/off/test/" not in html
    # ... and fetches its own result as soon as it is swapped in.
    assert html.count("testing…") == 2
    assert 'hx-post="/providers/a/test/" hx-trigger="load"' in html


def _pending(html: str) -> list[tuple[str, bool]]:
    """Each "testing…" element of a "Test all" answer: its provider, and whether it is out of
    band (into the table's cell of the same id) or stays in the progress region."""
    found = []
    for name, attrs in re.findall(r'<span class="test-result" id="test-([^"]+)"([^>]*)>', html):
        assert "data-test-pending" in attrs and 'hx-trigger="load"' in attrs
        assert f'hx-post="/providers/{name}/test/"' in attrs
        found.append((name, "hx-swap-oob" in attrs))
    return found


@pytest.mark.parametrize(
    ("shown", "in_table"),
    [
        ({}, [f"p{i:02d}" for i in range(50)]),
        ({"page": "2", "q": ""}, ["p50"]),
        ({"page": "1", "q": "p5"}, ["p50"]),  # p51, on that page too, is disabled
        ({"page": "1", "q": "nothing"}, []),
    ],
)
def test_test_all_tests_the_providers_on_other_pages_too(
    client, login_as, make_provider, shown, in_table
):
    login_as("viewer")
    for i in range(51):
        make_provider(name=f"p{i:02d}")
    make_provider(name="p51", enabled=False)
    enabled = [f"p{i:02d}" for i in range(51)]
    overview = client.get("/", shown).content.decode()
    for key, value in shown.items():  # the form sends the page shown and its filter
        assert f'<input type="hidden" name="{key}" value="{value}">' in overview

    html = client.post(reverse("test_all"), shown, **HX).content.decode()
    assert 'data-test-total="51"' in html and 'max="51"' in html
    pending = _pending(html)
    # Every enabled provider exactly once: the page's rows out of band into their cells ...
    assert sorted(name for name, _ in pending) == enabled
    assert [name for name, oob in pending if oob] == in_table
    assert all(f'id="test-{name}"' in overview for name in in_table)
    # ... the others in the progress region (the answer's own content), under their name.
    elsewhere = [name for name, oob in pending if not oob]
    assert all(f'id="test-{name}"' not in overview for name in elsewhere)
    if elsewhere:
        listed = html[html.index("<details") : html.index("</details>")]
        assert f"{len(elsewhere)} on other pages" in listed
        assert all(f">{name}</a>" in listed for name in elsewhere)
    else:
        assert "<details" not in html


def test_test_all_without_javascript_comes_back_to_the_page_shown(
    client, login_as, make_provider, upstream
):
    login_as("viewer")
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    response = client.post(reverse("test_all"), {"page": "1", "q": "a"})
    assert response.status_code == 302 and response["Location"] == "/?page=1&q=a"
    assert client.post(reverse("test_all"), {"page": "", "q": ""})["Location"] == "/"


def test_each_result_replaces_its_row_cell_and_is_counted(
    client, login_as, make_provider, upstream_factory
):
    login_as("viewer")
    good, bad = upstream_factory("good"), upstream_factory("bad")
    bad.fail_next(401, {"error": {"message": f"bad key {SECRET}"}})
    make_provider(name="good", base_url=good.base_url + "/v1")
    make_provider(name="bad", base_url=bad.base_url + "/v1")
    ok = client.post(reverse("provider_test", args=["good"]), {"scope": "all"}, **HX)
    failed = client.post(reverse("provider_test", args=["bad"]), {"scope": "all"}, **HX)
    assert _ids(ok.content.decode()) == ["test-good"]
    assert 'data-test-batch="ok"' in ok.content.decode()
    assert 'data-test-batch="failed"' in failed.content.decode()
    assert "HTTP 401" in failed.content.decode() and SECRET not in failed.content.decode()
    # The provider page's health section redraws on this event.
    assert json.loads(ok["HX-Trigger"]) == {"provider-tested": {"provider": "good"}}
    # A reload shows the same as the swapped-in cells.
    html = client.get("/").content.decode()
    assert "ok ·" in html and "HTTP 401" in html


class _Slots(threading.BoundedSemaphore):
    """The per-process bound, recording how long a row would wait; never waits itself."""

    def acquire(self, blocking=True, timeout=None):
        self.waited = timeout
        return super().acquire(blocking=False)


def test_test_all_rows_share_the_same_bound_as_the_no_javascript_path():
    # The rows' slots hold as many tests as the service runs at once by default.
    slots = provider_views.TEST_ALL_SLOTS
    taken = [slots.acquire(blocking=False) for _ in range(TEST_ALL_CONCURRENCY + 1)]
    try:
        assert taken == [True] * TEST_ALL_CONCURRENCY + [False]
    finally:
        for _ in range(sum(taken)):
            slots.release()


def test_a_test_all_row_over_the_servers_bound_answers_busy(
    client, login_as, make_provider, upstream, monkeypatch
):
    login_as("viewer")
    make_provider(name="a", base_url=upstream.base_url + "/v1", timeout=7)
    slots = _Slots(1)
    monkeypatch.setattr(provider_views, "TEST_ALL_SLOTS", slots)
    url = reverse("provider_test", args=["a"])
    assert slots.acquire()  # every slot taken, as by other rows still testing

    busy = client.post(url, {"scope": "all"}, **HX).content.decode()
    assert _ids(busy) == ["test-a"] and 'data-test-batch="busy"' in busy
    assert provider_views.TEST_BUSY.format(limit=TEST_ALL_CONCURRENCY) in busy
    assert slots.waited == 7  # up to the provider's own timeout, then this answer
    assert upstream.requests == [] and not Provider.objects.get(name="a").probes.exists()
    # A single "Test connection" is not held back by "Test all".
    assert "ok ·" in client.post(url, **HX).content.decode()

    slots.release()
    done = client.post(url, {"scope": "all"}, **HX).content.decode()
    assert 'data-test-batch="ok"' in done
    assert slots.acquire()  # the row gave its slot back


def test_progress_counts_rows_that_were_not_tested(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="a")
    html = client.post(reverse("test_all"), **HX).content.decode()
    assert "<span data-busy hidden>, <span data-busy-count>0</span> not tested" in html


@pytest.mark.django_db(transaction=True)
def test_test_all_without_javascript_survives_a_hanging_provider(
    client, login_as, make_provider, upstream_factory
):
    login_as("viewer")
    good, hanging = upstream_factory("good"), upstream_factory("hang")
    hanging.hang(5)
    make_provider(name="good", base_url=good.base_url + "/v1")
    make_provider(name="hangs", base_url=hanging.base_url + "/v1", timeout=0.5)
    response = client.post(reverse("test_all"), follow=True)
    html = response.content.decode()
    assert "1 of 2 failed: hangs." in html
    assert "No answer within 0.5 s" in html  # the row's health cell, rendered from the record
    assert Provider.objects.get(name="good").probes.get().ok is True


def test_suggestions_use_the_models_found_by_the_test(client, login_as, make_provider, upstream):
    login_as("editor")
    upstream.models = ["gpt-4o", "gpt-4o-mini"]
    provider = make_provider(name="a", base_url=upstream.base_url + "/v1")
    client.post(reverse("provider_test", args=["a"]), {"scope": "all"}, **HX)
    services.default_model_set(provider=provider, model="gpt-4o")
    html = client.get("/").content.decode()
    assert '<option value="gpt-4o-mini"></option>' in html


def test_overview_flags_an_unhealthy_default_provider(
    client, login_as, make_provider, upstream, settings
):
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 1
    login_as("viewer")
    provider = make_provider(name="a", base_url=upstream.base_url + "/v1")
    services.default_model_set(provider=provider, model="m")
    assert "is unhealthy" not in client.get("/").content.decode()
    upstream.fail_next(500)
    services.provider_test(provider=provider)
    html = client.get("/").content.decode()
    assert "The default model&#x27;s provider a is unhealthy" in html
    assert 'class="badge badge-warn"' in html and ">unhealthy</span>" in html


def test_provider_page_draws_the_history_with_a_table_fallback(
    client, login_as, make_provider, upstream
):
    login_as("viewer")
    provider = make_provider(name="a", base_url=upstream.base_url + "/v1")
    html = client.get(reverse("provider_detail", args=["a"])).content.decode()
    assert "No connection tests recorded yet" in html and "<svg" not in html
    services.provider_test(provider=provider, actor="alice")
    upstream.fail_next(503, {"error": {"message": f"down <b>{SECRET}</b>"}})
    services.provider_test(provider=provider, actor="alice")
    services.provider_test(provider=provider, actor="alice")
    html = client.get(reverse("provider_detail", args=["a"])).content.decode()
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert 'aria-labelledby="health-chart-title health-chart-desc"' in svg
    assert "<title id=" in svg and "The last 3 tests, oldest first: 2 ok, 1 failed" in svg
    assert svg.count("<rect") == 3 and svg.count('fill="#e8a39d"') == 1
    # The failed bar is full height; the text table says the same, newest first.
    assert 'y="0.0" width="9.0" height="100.0" fill="#e8a39d"' in svg
    start = html.index("Test history as a table")
    table = html[start : html.index("</details>", start)]
    assert table.count("<tr>") == 4 and "HTTP 503" in table and "alice" in table
    assert "&lt;b&gt;" in table and "<b>" not in table
    assert SECRET not in html


def test_health_section_redraws_alone_for_htmx(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="a")
    url = reverse("provider_detail", args=["a"])
    html = client.get(url, HTTP_HX_TARGET="health", **HX).content.decode()
    assert html.lstrip().startswith('<section id="health"') and "<html" not in html
    # Other htmx requests (a redirect followed after a failed removal) get the whole page.
    assert "<html" in client.get(url, **HX).content.decode()


def test_editor_switches_taking_out_of_groups(client, login_as, make_provider):
    user = login_as("editor")
    make_provider(name="a")
    url = reverse("provider_drain", args=["a"])
    html = client.post(url, {"drain_when_unhealthy": "on"}, HTTP_HX_TARGET="health", **HX)
    assert html.content.decode().lstrip().startswith('<section id="health"')
    assert "will be taken out of its routing groups" in html.content.decode()
    assert Provider.objects.get().drain_when_unhealthy is True
    event = AuditEvent.objects.get(action="provider.update", target="a")
    assert event.actor_name == user.username
    response = client.post(url, {})  # unticked, without JavaScript
    assert response.status_code == 302 and response["Location"] == "/providers/a/"
    assert Provider.objects.get().drain_when_unhealthy is False


def test_viewer_cannot_switch(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="a")
    response = client.post(reverse("provider_drain", args=["a"]), {"drain_when_unhealthy": "on"})
    assert response.status_code == 403
    assert Provider.objects.get().drain_when_unhealthy is False
    html = client.get(reverse("provider_detail", args=["a"])).content.decode()
    assert "stays in its routing groups" in html and 'name="drain_when_unhealthy"' not in html


def test_provider_page_says_which_groups_it_left(
    client, login_as, make_provider, upstream_factory, settings
):
    settings.ROUTING_HEALTH_FAILURE_THRESHOLD = 1
    login_as("viewer")
    a, b = upstream_factory("a"), upstream_factory("b")
    pa = make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pb", base_url=b.base_url + "/v1")
    services.group_save(name="fast", deployments=[D("pa", "m"), D("pb", "m")])
    services.group_save(name="solo", deployments=[D("pa", "m")])
    health.provider_drain_set(provider=pa, drain_when_unhealthy=True)
    a.fail_next(500)
    services.provider_test(provider=pa)
    assert [d.label for d in live.snapshot().groups["fast"].deployments] == ["pb/m"]
    html = client.get(reverse("provider_detail", args=["pa"])).content.decode()
    assert "Taken out of routing group <strong>fast</strong>" in html
    assert "Still serving routing group <strong>solo</strong>" in html
    assert "a group is never left empty" in html


def test_test_all_counts_once_against_the_test_budget(client, login_as, make_provider, settings):
    settings.ROUTING_TESTS_PER_MINUTE = 2
    login_as("viewer")
    names = [f"p{i}" for i in range(4)]
    for name in names:
        make_provider(name=name, base_url="http://127.0.0.1:9/v1", timeout=0.5)
    assert client.post(reverse("test_all"), **HX).status_code == 200
    # Four rows fetch their results, more than the budget of two: none is refused.
    for name in names:
        row = client.post(reverse("provider_test", args=[name]), {"scope": "all"}, **HX)
        assert row.status_code == 200, name
    # Each grant is used once; after it, tests count again (1 of 2 is left, then refused).
    again = {"scope": "all"}
    assert client.post(reverse("provider_test", args=["p0"]), again, **HX).status_code == 200
    refused = client.post(reverse("provider_test", args=["p0"]), again, **HX)
    assert refused.status_code == 429 and "Retry-After" in refused


@pytest.mark.django_db(transaction=True)
def test_racing_rows_cannot_share_one_grant(make_provider, settings):
    # Ten simultaneous scope=all requests for one provider: one uses its grant, and at most
    # one more the budget left after Test all itself (simultaneous requests may all see each
    # other's count and be refused: the budget errs on the side of refusing).
    from concurrent.futures import ThreadPoolExecutor

    from django.contrib.auth.models import User
    from django.test import Client

    settings.ROUTING_TESTS_PER_MINUTE = 2
    make_provider(name="p0", base_url="http://127.0.0.1:9/v1", timeout=0.5)
    user = User.objects.create_superuser("root", password="pw")
    starter = Client()
    starter.force_login(user)
    assert starter.post(reverse("test_all"), secure=True, **HX).status_code == 200

    def row(_):
        client = Client()
        client.force_login(user)
        url = reverse("provider_test", args=["p0"])
        return client.post(url, {"scope": "all"}, secure=True, **HX).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(row, range(10)))
    assert set(statuses) <= {200, 429}
    assert 1 <= statuses.count(200) <= 2


def test_a_busy_row_can_be_retried_without_using_the_test_budget(
    client, login_as, make_provider, upstream, monkeypatch, settings
):
    settings.ROUTING_TESTS_PER_MINUTE = 1
    login_as("viewer")
    make_provider(name="a", base_url=upstream.base_url + "/v1", timeout=0.5)
    slots = _Slots(1)
    monkeypatch.setattr(provider_views, "TEST_ALL_SLOTS", slots)
    url = reverse("provider_test", args=["a"])
    assert client.post(reverse("test_all"), **HX).status_code == 200  # the one test
    assert slots.acquire()
    assert 'data-test-batch="busy"' in client.post(url, {"scope": "all"}, **HX).content.decode()
    slots.release()
    retry = client.post(url, {"scope": "all"}, **HX)
    assert retry.status_code == 200 and 'data-test-batch="ok"' in retry.content.decode()
