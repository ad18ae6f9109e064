import pytest
from django.urls import reverse

from providers import services
from providers.models import DefaultModel
from tests.conftest import SECRET

HX = {"HTTP_HX_REQUEST": "true"}


def test_it_requires_login(client, db):
    from django.contrib.auth.models import User

    User.objects.create_user("someone", password="x")
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_empty_state_tells_an_editor_what_to_do(client, login_as):
    login_as("editor")
    html = client.get("/").content.decode()
    assert "No providers yet" in html
    assert 'href="/providers/add/"' in html


def test_empty_state_for_a_viewer_has_no_add_button(client, login_as):
    login_as("viewer")
    html = client.get("/").content.decode()
    assert "Ask an editor" in html and "Add provider</a>" not in html


def test_table_shows_masked_key_health_and_default(client, login_as, make_provider):
    user = login_as("viewer")
    p = make_provider(name="openai-prod")
    services.default_model_set(provider=p, model="gpt-4o-mini", actor=user)
    html = client.get("/").content.decode()
    assert "openai-prod" in html and "sk-…J9k0" in html
    assert "never tested" in html
    assert "openai-prod/gpt-4o-mini" in html and f"by {user.username}" in html
    assert SECRET not in html


@pytest.mark.parametrize("role", ["viewer", "editor"])  # editors also get the switcher
def test_overview_query_count_does_not_grow_with_providers(
    client, login_as, make_provider, django_assert_max_num_queries, role
):
    login_as(role)
    for i in range(3):
        make_provider(name=f"p{i}")
    with django_assert_max_num_queries(12) as small:
        client.get("/")
    for i in range(3, 60):  # past the first page of the table
        make_provider(name=f"p{i}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get("/")


def _pages_nav(html: str) -> str:
    start = html.index('<nav class="pagination" aria-label="Providers pages">')
    return html[start : html.index("</nav>", start)]


def test_the_table_shows_fifty_providers_a_page(client, login_as, make_provider):
    login_as("viewer")
    for i in range(51):
        make_provider(name=f"p{i:02d}")
    first = client.get("/").content.decode()
    assert 'id="test-p49"' in first and 'id="test-p50"' not in first
    nav = _pages_nav(first)
    assert "Page 1 of 2" in nav and '<a href="?page=2" rel="next">Next</a>' in nav
    assert "Previous" not in nav

    second = client.get("/", {"page": "2"}).content.decode()
    assert 'id="test-p50"' in second and 'id="test-p49"' not in second
    nav = _pages_nav(second)
    assert "Page 2 of 2" in nav and '<a href="?page=1" rel="prev">Previous</a>' in nav
    assert "Next" not in nav
    # A page past the end (providers removed since the link was made) shows the last one.
    for page in ("9", "0"):
        html = client.get("/", {"page": page}).content.decode()
        assert "Page 2 of 2" in html and 'id="test-p50"' in html
    # The page links keep the filter.
    assert 'href="?q=p&amp;page=2"' in client.get("/", {"q": "p"}).content.decode()


def test_one_page_of_providers_has_no_page_links(client, login_as, make_provider):
    login_as("viewer")
    make_provider(name="a")
    assert 'aria-label="Providers pages"' not in client.get("/").content.decode()


def test_the_filter_shows_the_providers_whose_name_contains_it(client, login_as, make_provider):
    login_as("viewer")
    for name in ("openai-prod", "team-openai", "ollama"):
        make_provider(name=name)
    html = client.get("/", {"q": " OpenAI "}).content.decode()
    assert 'id="test-openai-prod"' in html and 'id="test-team-openai"' in html
    assert 'id="test-ollama"' not in html
    form = html[
        html.index('<form class="filters"') : html.index(
            "</form>", html.index('<form class="filters"')
        )
    ]
    assert 'method="get"' in form and 'role="search"' in form
    assert '<label for="provider-filter">Name contains</label>' in form
    assert 'name="q" id="provider-filter" value="OpenAI"' in form


def test_a_filter_matching_nothing_offers_to_clear_it(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a")
    html = client.get("/", {"q": "<b>zzz"}).content.decode()
    assert "No provider matches “&lt;b&gt;zzz”" in html and "<b>zzz" not in html
    assert '<a href="/">Clear the filter</a>' in html
    assert "No providers yet" not in html and "<table" not in html
    # Still there: the filter to change it, and "Test all", which tests every provider.
    assert 'id="provider-filter"' in html and ">Test all</button>" in html


def test_make_default_with_htmx_returns_the_card_only(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a")
    response = client.post(reverse("default_set"), {"provider": "a", "model": "gpt-4o"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="default-card"' in html
    assert "a/gpt-4o" in html
    assert DefaultModel.objects.get().model == "gpt-4o"


def test_make_default_without_javascript_redirects(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a")
    response = client.post(
        reverse("default_set"), {"provider": "a", "model": "gpt-4o", "next": "/"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert DefaultModel.objects.get().model == "gpt-4o"


def test_invalid_model_is_refused_and_escaped(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a")
    response = client.post(
        reverse("default_set"), {"provider": "a", "model": "<script>alert(1)</script>"}, **HX
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert not DefaultModel.objects.exists()


def test_revert_returns_to_previous_default(client, login_as, make_provider):
    login_as("editor")
    a, b = make_provider(name="a"), make_provider(name="b")
    services.default_model_set(provider=a, model="m1")
    services.default_model_set(provider=b, model="m2")
    html = client.get("/").content.decode()
    assert ">Revert</button>" in html
    client.post(reverse("default_revert"), **HX)
    assert (DefaultModel.objects.get().provider.name, DefaultModel.objects.get().model) == (
        "a",
        "m1",
    )


@pytest.mark.parametrize("url", ["default_set", "default_revert"])
@pytest.mark.parametrize("headers", [{}, HX])
def test_viewer_gets_403_on_switching(client, login_as, make_provider, url, headers):
    login_as("viewer")
    make_provider(name="a")
    response = client.post(reverse(url), {"provider": "a", "model": "m"}, **headers)
    assert response.status_code == 403
    assert not DefaultModel.objects.exists()


def test_get_never_switches(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a")
    assert client.get(reverse("default_set"), {"provider": "a", "model": "m"}).status_code == 405
    assert not DefaultModel.objects.exists()


def test_model_suggestions_come_from_the_last_test(client, login_as, make_provider, upstream):
    login_as("viewer")
    upstream.models = ["gpt-4o", "gpt-4o-mini"]
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    empty = client.get(reverse("model_options"), {"provider": "a"}, **HX).content.decode()
    assert "gpt-4o" not in empty
    refreshed = client.post(reverse("model_options"), {"provider": "a"}, **HX).content.decode()
    assert '<option value="gpt-4o-mini">' in refreshed


def test_the_overview_has_its_h1_before_its_sections(client, login_as):
    login_as("viewer")
    html = client.get("/").content.decode()
    assert html.count("<h1") == 1
    assert html.index("<h1>Overview</h1>") < html.index('<h2 id="default-heading">')


def test_refresh_models_is_a_real_submit_with_htmx_on_top(client, login_as, make_provider):
    login_as("editor")
    make_provider(name="a")
    html = client.get("/").content.decode()
    start = html.index("<button", html.index("Make default</button>"))
    button = html[start : html.index("</button>", start)]
    assert "Refresh models" in button and 'type="submit"' in button
    # Without JavaScript it posts the form to model_options (no "model" needed for that) ...
    url = reverse("model_options")
    assert f'formaction="{url}"' in button and 'formmethod="post"' in button
    assert "formnovalidate" in button
    # ... with htmx it swaps the suggestions alone, without the switch's confirmation.
    assert f'hx-post="{url}"' in button and 'hx-target="#model-options"' in button
    assert 'hx-swap="innerHTML"' in button and 'hx-confirm="unset"' in button
    # Choosing another provider fetches its suggestions, likewise without the confirmation.
    select = html[html.index('<select name="provider"') : html.index("</select>")]
    assert 'hx-confirm="unset"' in select and 'hx-swap="innerHTML"' in select


def test_refresh_models_without_javascript_tests_and_comes_back(
    client, login_as, make_provider, upstream
):
    login_as("editor")
    upstream.models = ["gpt-4o", "gpt-4o-mini"]
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    make_provider(name="b")
    form = {"provider": "a", "model": "", "next": "/"}
    response = client.post(reverse("model_options"), form)
    assert response.status_code == 302 and response["Location"] == "/?provider=a"
    assert upstream.last.path == "/v1/models"

    html = client.get(response["Location"]).content.decode()
    assert "a: OK: 2 models found in" in html
    assert '<option value="a" selected>' in html  # the provider refreshed, with its models
    assert '<option value="gpt-4o-mini"></option>' in html


def test_refresh_models_without_javascript_says_when_the_test_failed(
    client, login_as, make_provider, upstream
):
    login_as("viewer")
    upstream.fail_next(401, {"error": {"message": "bad key"}})
    make_provider(name="a", base_url=upstream.base_url + "/v1")
    response = client.post(reverse("model_options"), {"provider": "a", "next": "/"}, follow=True)
    assert "a: HTTP 401" in response.content.decode()


def test_a_group_default_is_shown_by_name_and_revert_names_it(client, login_as, make_provider):
    from providers.models import RoutingGroup
    from providers.services import DeploymentSpec

    login_as("editor")
    p = make_provider(name="a")
    services.group_save(name="fast", deployments=[DeploymentSpec("a", "m")])
    services.default_model_set(group=RoutingGroup.objects.get(name="fast"))
    services.default_model_set(provider=p, model="m2")
    html = client.get("/").content.decode()
    assert "<code>a/m2</code>" in html and "to <code>fast</code>" in html
    client.post(reverse("default_revert"))
    html = client.get("/").content.decode()
    assert "<code>fast</code>" in html and "routing group" in html


def test_editor_makes_a_group_the_default_from_the_groups_page(client, login_as, make_provider):
    from providers.services import DeploymentSpec

    login_as("editor")
    make_provider(name="a")
    services.group_save(name="fast", deployments=[DeploymentSpec("a", "m")])
    assert ">Make default</button>" in client.get(reverse("group_list")).content.decode()
    response = client.post(reverse("default_set"), {"group": "fast", "next": "/groups/"})
    assert response.status_code == 302
    assert DefaultModel.objects.get().group.name == "fast"


def test_a_gateway_token_never_opens_the_dashboard(client, db):
    from django.contrib.auth.models import User

    from gateway.services import token_create

    User.objects.create_user("someone", password="x")
    _, raw = token_create(name="app")
    response = client.get("/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def _strip(html: str) -> str:
    start = html.index('<section class="status-strip"')
    return " ".join(html[start : html.index("</section>", start)].split())


def test_status_strip_shows_default_health_providers_and_last_day(
    client, login_as, make_provider, upstream_factory
):
    from usage import request_log

    login_as("viewer")
    good, bad = upstream_factory("good"), upstream_factory("bad")
    ok = make_provider(name="ok-one", base_url=good.base_url + "/v1")
    failing = make_provider(name="failing-one", base_url=bad.base_url + "/v1")
    make_provider(name="untested-one", base_url=good.base_url + "/v1")
    services.provider_test(provider=ok)
    bad.fail_next(500, times=5)
    services.provider_test(provider=failing)
    services.default_model_set(provider=ok, model="m")
    hi = [{"role": "user", "content": "hi"}]
    services.completion(hi)
    services.completion(hi, model="ok-one/m")
    with pytest.raises(services.ProviderError):
        services.completion(hi, model="failing-one/m")
    request_log.flush()
    strip = _strip(client.get("/").content.decode())
    assert '<span class="badge badge-ok">ok</span>' in strip and "ok-one/m" in strip
    assert "1 OK" in strip and "1 failing" in strip and "1 not tested" in strip
    assert '3 requests</a>,</span> <span class="status-errors">1 error</span>' in strip


def test_status_strip_flags_a_failing_default_and_a_group_default(
    client, login_as, make_provider, upstream
):
    login_as("viewer")
    p = make_provider(name="p", base_url=upstream.base_url + "/v1")
    upstream.fail_next(500)
    services.provider_test(provider=p)
    services.default_model_set(provider=p, model="m")
    strip = _strip(client.get("/").content.decode())
    assert '<span class="badge badge-error">failing</span>' in strip
    group = services.group_save(name="fast", deployments=[services.DeploymentSpec("p", "m")])
    assert services.provider_test(provider=p).ok
    services.default_model_set(group=group)
    strip = _strip(client.get("/").content.decode())
    assert ">fast</code>" in strip and '<span class="badge badge-ok">ok</span>' in strip
    assert "0 requests" in strip


def test_status_strip_keeps_the_query_count_fixed(
    client, login_as, make_provider, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    login_as("viewer")
    services.default_model_set(provider=make_provider(name="p0"), model="m")
    with CaptureQueriesContext(connection) as few:
        client.get("/")
    for i in range(1, 80):
        make_provider(name=f"p{i}")
    with django_assert_num_queries(len(few.captured_queries)):
        client.get("/")
