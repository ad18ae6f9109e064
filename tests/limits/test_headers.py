"""OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers: on every answer
of a limited token, plain or streamed (sent before the body), a provider's failure too, each
for the tighter of the token's and the team's limits; none without limits."""

from __future__ import annotations

import httpx
import openai
import pytest

from accounts import services as account_services
from gateway.services import token_create
from tests.limits.conftest import HI

pytestmark = pytest.mark.django_db(transaction=True)
NAMES = [
    f"x-ratelimit-{what}-{kind}"
    for what in ("limit", "remaining", "reset")
    for kind in ("requests", "tokens")
]


def test_every_answer_of_a_limited_token_carries_both_sets(world, backend, client, gateway):
    _, raw = token_create(name="ci", rpm=10, tpm=1000, actor="test")
    c = client(raw)
    plain = c.chat.completions.with_raw_response.create(model="default", messages=HI)
    assert all(name in plain.headers for name in NAMES)
    assert plain.headers["x-ratelimit-remaining-requests"] == "9"
    streamed = c.chat.completions.with_raw_response.create(
        model="default", messages=HI, stream=True
    )
    assert all(name in streamed.headers for name in NAMES)
    assert streamed.headers["x-ratelimit-remaining-requests"] == "8"
    list(streamed.parse())
    world.fail_next(500)
    with pytest.raises(openai.InternalServerError) as failed:
        c.chat.completions.create(model="default", messages=HI)
    assert failed.value.response.headers["x-ratelimit-remaining-requests"] == "7"
    # A failed call counts: it was made.
    answer = httpx.post(
        gateway + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {raw}"},
        json={"model": "default", "messages": HI},
    )
    assert answer.headers["x-ratelimit-remaining-requests"] == "6"


def test_the_headers_describe_the_tighter_limit_of_each_kind(world, backend, client):
    team = account_services.team_create(name="red", actor="test")
    account_services.team_update(team=team, rpm=3, tpm=100000, actor="test")
    _, raw = token_create(name="ci", team=team, rpm=50, tpm=500, actor="test")
    answer = client(raw).chat.completions.with_raw_response.create(model="default", messages=HI)
    assert answer.headers["x-ratelimit-limit-requests"] == "3"  # the team's
    assert answer.headers["x-ratelimit-limit-tokens"] == "500"  # the token's


def test_a_budget_or_concurrency_alone_sends_no_rate_headers(world, backend, client):
    """Neither has an OpenAI header: their refusals say what they need."""
    _, raw = token_create(name="ci", max_parallel=3, actor="test")
    answer = client(raw).chat.completions.with_raw_response.create(model="default", messages=HI)
    assert not any(name in answer.headers for name in NAMES)
