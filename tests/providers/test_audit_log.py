"""The audit log page: who may see it, ordering, pagination, filters, htmx and escaping."""

import re

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from providers.models import AuditEvent
from providers.views.audit import describe_changes

pytestmark = pytest.mark.django_db


def make_user(username: str, role: str | None = "viewer") -> User:
    user = User.objects.create_user(username=username, password="correct-horse-battery-42")
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def make_events(count: int, target: str = "acme", actor: str = "alice", **fields) -> None:
    fields.setdefault("action", "provider.update")
    fields.setdefault("changes", {"timeout": [10, 30]})
    AuditEvent.objects.bulk_create(
        AuditEvent(target=target, actor_name=actor, **fields) for _ in range(count)
    )


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("vera"))
    return client


def rows(page: str) -> int:
    return len(re.findall(r"<tr>\s*<td class=\"num\">", page))


def test_it_redirects_anonymous_visitors_to_login(client):
    response = client.get("/audit/")
    assert response.status_code == 302 and response.url.startswith("/login/?next=/audit/")


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_role_may_read_it(client, role):
    client.force_login(make_user("someone", role))
    assert client.get("/audit/").status_code == 200


def test_it_refuses_a_user_without_a_role(client):
    client.force_login(make_user("nobody", None))
    assert client.get("/audit/", HTTP_HX_REQUEST="true").status_code == 403


def test_it_shows_newest_first_with_readable_changes(viewer_client):
    make_events(1, target="old-one")
    AuditEvent.objects.create(
        actor_name="bob",
        action="provider.update",
        target="new-one",
        changes={"timeout": [10, 30], "api_key": "changed", "enabled": [True, False]},
    )
    page = viewer_client.get("/audit/").content.decode()
    assert page.index("new-one") < page.index("old-one")
    assert "timeout: 10 → 30" in page and "api_key: changed" in page
    assert "enabled: yes → no" in page
    event = AuditEvent.objects.get(target="new-one")
    assert f'<time datetime="{event.at.isoformat()}">' in page
    assert "Time (UTC)" in page


def test_describe_changes():
    assert describe_changes({"name": [None, "acme"], "timeout": [10.0, 30.5]}) == [
        "name: acme",
        "timeout: 10 → 30.5",
    ]
    assert describe_changes({"undecryptable": [], "rotated": 2}) == [
        "undecryptable: none",
        "rotated: 2",
    ]
    assert describe_changes({}) == []


def test_it_paginates_50_per_page_and_links_keep_filters(viewer_client):
    make_events(120, target="acme")
    make_events(3, target="other")
    first = viewer_client.get("/audit/", {"target": "acme"}).content.decode()
    assert rows(first) == 50
    assert "Showing 1–50 of 120 events" in first
    assert 'href="?target=acme&amp;page=2"' in first
    last = viewer_client.get("/audit/", {"target": "acme", "page": 3}).content.decode()
    assert rows(last) == 20
    assert "Page 3 of 3" in last and 'href="?target=acme&amp;page=2"' in last
    assert rows(viewer_client.get("/audit/", {"page": "999"}).content.decode()) == 23


def test_it_filters_by_target_and_by_user(viewer_client):
    make_events(2, target="acme", actor="alice")
    make_events(3, target="azure-eu", actor="bob")
    make_events(4, target="acme", actor="bob")
    page = viewer_client.get("/audit/").content.decode()
    for value in ("acme", "azure-eu", "alice", "bob"):
        assert f'<option value="{value}">{value}</option>' in page
    assert rows(viewer_client.get("/audit/", {"target": "acme"}).content.decode()) == 6
    assert rows(viewer_client.get("/audit/", {"user": "bob"}).content.decode()) == 7
    both = viewer_client.get("/audit/", {"target": "acme", "user": "bob"}).content.decode()
    assert rows(both) == 4
    assert '<option value="acme" selected>' in both and '<option value="bob" selected>' in both


def test_filter_form_works_with_and_without_htmx(viewer_client):
    page = viewer_client.get("/audit/").content.decode()
    assert '<form class="filters card" method="get" action="/audit/"' in page
    assert 'hx-get="/audit/" hx-target="#audit-results"' in page
    assert '<label for="filter-target">' in page and '<label for="filter-user">User</label>' in page


def test_htmx_request_gets_only_the_results(viewer_client):
    make_events(2, target="acme")
    response = viewer_client.get("/audit/", {"target": "acme"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert "<html" not in page and "<select" not in page
    assert page.lstrip().startswith('<section id="audit-results"')
    assert rows(page) == 2
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_whole_page(viewer_client):
    response = viewer_client.get(
        "/audit/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


def test_it_escapes_markup(viewer_client):
    AuditEvent.objects.create(
        actor_name="<b>eve</b>",
        action="provider.update",
        target="<script>alert(1)</script>",
        changes={"<img src=x onerror=alert(2)>": ["<i>", "<script>"]},
    )
    page = viewer_client.get("/audit/").content.decode()
    assert "<script>" not in page and "<img" not in page and "<b>eve" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;eve&lt;/b&gt;" in page
    partial = viewer_client.get("/audit/", HTTP_HX_REQUEST="true").content.decode()
    assert "<script>" not in partial


def test_empty_states(viewer_client):
    assert "No changes recorded yet" in viewer_client.get("/audit/").content.decode()
    make_events(1, target="acme")
    page = viewer_client.get("/audit/", {"target": "nothing-here"}).content.decode()
    assert "No events match these filters" in page
    assert '<option value="nothing-here" selected>' in page


def count_queries(client, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/audit/", params).status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_rows(viewer_client, django_assert_max_num_queries):
    make_events(1)
    few = count_queries(viewer_client)
    make_events(60, actor="bob", target="other")
    assert count_queries(viewer_client) == few
    assert count_queries(viewer_client, user="bob", page="2") == few
    with django_assert_max_num_queries(8):
        viewer_client.get("/audit/")
