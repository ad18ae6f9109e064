"""A token's limits on the dashboard: set when it is created and on its page, errors beside
their field, audited; its use against them as bars (on its page and in the list) and the
calls they refused; who may change them; the queries the list costs."""

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import team_create, team_member_set
from gateway import services as token_services
from gateway.models import AccessToken
from limits.rules import BUDGET_BAD, RPM_BAD, TPM_BAD, Budget
from providers.models import AuditEvent, RoutingGroup
from usage import request_log

pytestmark = pytest.mark.django_db

LABELS = {
    "rpm": "Requests per minute",
    "tpm": "Tokens per minute",
    "max_parallel": "Concurrent requests",
    "budget_usd": "Budget (USD)",
    "budget_period": "Budget period",
}
NO_LIMITS = {"rpm": "", "tpm": "", "max_parallel": "", "budget_usd": "", "budget_period": "month"}


@pytest.fixture(autouse=True)
def _known_models(make_provider):
    RoutingGroup.objects.create(name="fast")
    make_provider(name="acme")


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _section(html: str, heading_id: str) -> str:
    match = re.search(rf'aria-labelledby="{heading_id}">(.*?)</section>', html, re.S)
    assert match, f"no section {heading_id}"
    return match.group(1)


def _field_errors(html: str, field_id: str) -> str:
    match = re.search(rf'<ul class="errorlist" id="{field_id}_error">(.*?)</ul>', html, re.S)
    assert match, f"no errors beside {field_id}"
    return _text(match.group(1))


def _log(token: str, count: int = 1, *, at=None, **fields) -> None:
    at = at or timezone.now()
    base = {
        "at": at,
        "token_name": token,
        "requested_model": "fast",
        "provider": "acme",
        "model": "gpt-4o-mini",
        "ok": True,
        "status": 200,
        "latency_ms": 100.0,
        "prompt_tokens": 10,
        "completion_tokens": 5,
    }
    request_log.write([{**base, **fields} for _ in range(count)])


def _refused(token: str, reason: str, *, at=None, model: str = "fast") -> None:
    _log(
        token,
        at=at,
        requested_model=model,
        provider="",
        model="",
        ok=False,
        status=429,
        error=reason,
        latency_ms=0.0,
        prompt_tokens=None,
        completion_tokens=None,
    )


def _labelled(html: str, field_id: str, label: str) -> None:
    assert f'<label for="{field_id}">{label}</label>' in html, (field_id, label)
    assert re.search(rf'<(input|select)[^>]*id="{field_id}"', html), field_id


# --- creating a token with limits ------------------------------------------------------------


def test_the_create_form_has_labelled_limit_fields(client, login_as):
    login_as("editor")
    html = client.get(reverse("token_list")).content.decode()
    for name, label in LABELS.items():
        _labelled(html, f"id_{name}", label)
    assert "<legend>Limits (optional)</legend>" in html


def test_an_editor_creates_a_token_with_limits(client, login_as):
    login_as("editor")
    data = {"name": "ci-bot", "rpm": "60", "tpm": "100000", "max_parallel": "4"}
    response = client.post(
        reverse("token_list"), {**data, "budget_usd": "50", "budget_period": "month"}
    )
    assert response.status_code == 200 and "Copy it now" in response.content.decode()
    token = AccessToken.objects.get(name="ci-bot")
    assert (token.rpm, token.tpm, token.max_parallel) == (60, 100000, 4)
    assert token.budget == Budget(Decimal("50"), "month")
    event = AuditEvent.objects.get(action="token.create", target="token:ci-bot")
    assert event.changes["rpm"] == 60 and event.changes["budget"] == "50/month"


def test_bad_limits_are_refused_beside_their_fields(client, login_as):
    login_as("editor")
    data = {"name": "ci-bot", "rpm": "0", "tpm": "-5", "budget_usd": "0.00001"}
    html = client.post(reverse("token_list"), data).content.decode()
    assert RPM_BAD in _field_errors(html, "id_rpm")
    assert TPM_BAD in _field_errors(html, "id_tpm")
    assert BUDGET_BAD in _field_errors(html, "id_budget_usd")
    summary = html.split('id="error-summary"')[1].split("</div>")[0]
    assert 'href="#id_rpm"' in summary and 'href="#id_budget_usd"' in summary
    assert 'value="0.00001"' in html
    assert not AccessToken.objects.exists()


# --- a token's page ----------------------------------------------------------------------------


def test_a_token_without_limits_says_so(client, login_as):
    token_services.token_create(name="ci-bot", actor="test")
    login_as("viewer")
    response = client.get(reverse("token_detail", args=["ci-bot"]))
    assert response.status_code == 200
    html = response.content.decode()
    limits = _text(_section(html, "limits-heading"))
    assert "No limits set" in limits
    assert "Nothing refused in the last 24 hours" in limits
    assert "<meter" not in html
    # A viewer sees, and cannot change.
    assert "Change limits" not in html and 'name="rpm"' not in html


def test_the_page_shows_use_against_each_limit_as_a_bar_with_words(client, login_as):
    budget = Budget(Decimal("10"), "month")
    token_services.token_create(name="ci-bot", rpm=60, tpm=1000, budget=budget, actor="test")
    _log("ci-bot", 3, cost=1.5)  # 3 requests, 45 tokens, $4.50 this month
    _log("ci-bot", 2, at=timezone.now() - timedelta(minutes=5), cost=0.25)  # not this minute
    login_as("viewer")
    html = client.get(reverse("token_detail", args=["ci-bot"])).content.decode()
    limits = _section(html, "limits-heading")
    rpm = re.search(r'<meter id="token-rpm"[^>]*>', limits).group(0)
    assert 'max="60"' in rpm and 'value="3"' in rpm
    assert 'aria-labelledby="token-rpm-label token-rpm-text"' in rpm
    text = _text(limits)
    assert "Requests per minute 3 of 60 requests in the last minute (5%)" in text
    assert "45 of 1,000 tokens in the last minute (4%)" in text
    assert "$5.00 of $10.00 this month (50%)" in text
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    assert f"resets {end:%Y-%m-%d} 00:00 UTC" in text


def test_a_limit_reached_says_so_in_words(client, login_as):
    token_services.token_create(name="ci-bot", rpm=2, actor="test")
    _log("ci-bot", 3)
    login_as("viewer")
    html = client.get(reverse("token_detail", args=["ci-bot"])).content.decode()
    assert "3 of 2 requests in the last minute (150%), limit reached" in _text(html)
    # The bar stops at its end.
    assert re.search(r'<meter id="token-rpm"[^>]*value="2"', html)


def test_the_refused_calls_are_listed_with_reason_time_and_model(client, login_as):
    token_services.token_create(name="ci-bot", rpm=1, actor="test")
    token_services.token_create(name="other", rpm=1, actor="test")
    reason = "Rate limit reached: token 'ci-bot' may make 1 requests per minute. Try again in 9 s."
    _refused("ci-bot", reason, model="acme/gpt-4o")
    _refused("ci-bot", "old", at=timezone.now() - timedelta(hours=30))
    _refused("other", "another token's")
    # A provider's own 429 is not one of ours.
    _log("ci-bot", ok=False, status=429, error="upstream said no")
    login_as("viewer")
    html = client.get(reverse("token_detail", args=["ci-bot"])).content.decode()
    refused = _text(html.split('id="token-refused-heading"')[1].split("</section>")[0])
    assert "1 refused in the last 24 hours" in refused
    assert reason in refused and "acme/gpt-4o" in refused
    assert "old" not in refused and "another token" not in refused
    assert "upstream said no" not in refused
    # Refused calls are not counted as used: the provider's 429 was.
    assert "1 of 1 requests in the last minute" in _text(html)


def test_an_editor_changes_a_tokens_limits_and_lifts_one(client, login_as):
    token_services.token_create(name="ci-bot", rpm=60, tpm=5000, actor="test")
    login_as("editor")
    url = reverse("token_detail", args=["ci-bot"])
    html = client.get(url).content.decode()
    for name, label in LABELS.items():
        _labelled(html, f"id_{name}", label)
    assert 'name="rpm" value="60"' in html and 'name="tpm" value="5000"' in html
    data = {**NO_LIMITS, "rpm": "120", "budget_usd": "12.5", "budget_period": "week"}
    response = client.post(url, data)
    assert response.status_code == 302 and response.url == url
    token = AccessToken.objects.get(name="ci-bot")
    assert (token.rpm, token.tpm, token.budget) == (120, None, Budget(Decimal("12.5"), "week"))
    event = AuditEvent.objects.get(action="token.limits", target="token:ci-bot")
    assert event.changes == {"rpm": [60, 120], "tpm": [5000, None], "budget": [None, "12.5/week"]}
    again = client.get(url).content.decode()
    assert "Saved the limits of token ci-bot: 120 requests per minute, $12.5 per week." in again
    assert 'name="budget_usd" value="12.5"' in again
    assert '<option value="week" selected>' in again


def test_a_refused_change_keeps_the_input_and_changes_nothing(client, login_as):
    token_services.token_create(name="ci-bot", rpm=60, actor="test")
    login_as("editor")
    url = reverse("token_detail", args=["ci-bot"])
    data = {**NO_LIMITS, "rpm": str(2**40), "budget_usd": "-1"}
    response = client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert RPM_BAD in _field_errors(html, "id_rpm")
    assert BUDGET_BAD in _field_errors(html, "id_budget_usd")
    assert f'value="{2**40}"' in html
    assert AccessToken.objects.get(name="ci-bot").rpm == 60
    assert not AuditEvent.objects.filter(action="token.limits").exists()


def test_viewers_may_not_change_limits(client, login_as):
    token_services.token_create(name="ci-bot", rpm=60, actor="test")
    login_as("viewer")
    response = client.post(reverse("token_detail", args=["ci-bot"]), {**NO_LIMITS, "rpm": "1"})
    assert response.status_code == 403
    assert AccessToken.objects.get(name="ci-bot").rpm == 60


def test_a_teams_token_lives_on_its_teams_page(client, login_as):
    red = team_create(name="red", allowed_models=["fast"], actor="test")
    token_services.token_create(name="red-bot", team=red, rpm=5, actor="test")
    login_as("editor")
    url = reverse("token_detail", args=["red-bot"])
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == reverse("team_token_detail", args=["red", "red-bot"])
    assert client.post(url, {**NO_LIMITS, "rpm": "1"}).status_code == 404
    assert AccessToken.objects.get(name="red-bot").rpm == 5
    assert client.get(reverse("token_detail", args=["nope"])).status_code == 404


def test_a_team_admin_changes_their_teams_token_on_its_page(client, django_user_model):
    red = team_create(name="red", allowed_models=["fast"], actor="test")
    blue = team_create(name="blue", actor="test")
    token_services.token_create(name="red-bot", team=red, actor="test")
    token_services.token_create(name="blue-bot", team=blue, actor="test")
    token_services.token_create(name="global-bot", actor="test")
    lead = django_user_model.objects.create_user("lead", password="pw")
    team_member_set(team=red, user=lead, role="admin", actor="test")
    client.force_login(lead)
    url = reverse("team_token_detail", args=["red", "red-bot"])
    html = client.get(url).content.decode()
    assert "Change limits" in html and f'action="{url}"' in html
    assert 'href="/teams/red/#limits-heading"' in html  # the team's limits hold too
    response = client.post(url, {**NO_LIMITS, "max_parallel": "3"})
    assert response.status_code == 302 and response.url == url
    assert AccessToken.objects.get(name="red-bot").max_parallel == 3
    # Another team's token, or a global one, is not found under this team.
    for other in ("blue-bot", "global-bot"):
        page = reverse("team_token_detail", args=["red", other])
        assert client.get(page).status_code == 404
        assert client.post(page, {**NO_LIMITS, "rpm": "1"}).status_code == 404
    assert AccessToken.objects.filter(rpm__isnull=False).count() == 0


def test_a_team_member_sees_the_token_but_cannot_change_it(client, django_user_model):
    red = team_create(name="red", actor="test")
    token_services.token_create(name="red-bot", team=red, rpm=7, actor="test")
    member = django_user_model.objects.create_user("mia", password="pw")
    team_member_set(team=red, user=member, role="member", actor="test")
    client.force_login(member)
    url = reverse("team_token_detail", args=["red", "red-bot"])
    html = client.get(url).content.decode()
    assert "0 of 7 requests in the last minute" in _text(html)
    assert "Change limits" not in html
    assert client.post(url, {**NO_LIMITS, "rpm": "100"}).status_code == 403
    assert AccessToken.objects.get(name="red-bot").rpm == 7


# --- the list -------------------------------------------------------------------------------


def _row(html: str, name: str) -> str:
    match = re.search(rf'<tr id="token-{name}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {name}"
    return match.group(1)


def test_the_list_shows_a_compact_bar_per_limit_and_links_each_token(client, login_as):
    budget = Budget(Decimal("2"), "day")
    token_services.token_create(name="ci-bot", rpm=60, budget=budget, actor="test")
    token_services.token_create(name="free", actor="test")
    _log("ci-bot", 2, cost=0.5)
    login_as("viewer")
    html = client.get(reverse("token_list")).content.decode()
    assert '<th scope="col">Limits <span class="muted">(use)</span></th>' in html
    row = _row(html, "ci-bot")
    assert 'href="/tokens/ci-bot/"' in row
    assert "2/60 requests a minute" in _text(row)
    assert "$1.00 of $2.00 today" in _text(row)
    assert 'aria-label="Requests per minute: 2 of 60 requests in the last minute (3%)"' in row
    assert "no limits" in _text(_row(html, "free"))


@pytest.mark.parametrize("many", [1, 12])
def test_the_list_costs_the_same_queries_however_many_tokens(
    client, login_as, django_assert_num_queries, many
):
    login_as("viewer")
    red = team_create(name="red", actor="test")
    for i in range(many):
        budget = Budget(Decimal("5"), ["day", "week", "month", "total"][i % 4])
        token_services.token_create(
            name=f"bot-{i}", team=red if i % 2 else None, rpm=10, budget=budget, actor="test"
        )
        _log(f"bot-{i}", 2, cost=0.1)
    # The session, the user, their groups, the tokens, their last minute and their spend.
    with django_assert_num_queries(6):
        assert client.get(reverse("token_list")).status_code == 200
