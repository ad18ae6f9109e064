"""Tokens per minute, through the real gateway with the official `openai` client: counted
after each call from the answer's usage (streamed answers too), checked before the next,
for a token and for all of a team's tokens together; in the database and in Redis."""

from __future__ import annotations

import openai
import pytest

from accounts import services as account_services
from gateway.services import token_create
from tests.limits.conftest import HI, calls_received
from usage import request_log
from usage.models import RequestLog

# Every test twice: relayed without LiteLLM, and through LiteLLM (tests/conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("both_paths")]
# The recording upstream reports 7 prompt tokens and one completion token per word.
WORDS = 20
PER_CALL = 7 + WORDS


@pytest.fixture
def wordy(world):
    world.reply_text = " ".join(["word"] * WORDS)
    return world


def test_a_token_is_refused_once_its_tokens_of_the_minute_are_used(wordy, backend, client):
    _, raw = token_create(name="ci", tpm=50, actor="test")
    c = client(raw)
    remaining = []
    for _ in range(2):  # 27 tokens, then 54: the second call began under the limit
        answer = c.chat.completions.with_raw_response.create(model="default", messages=HI)
        assert answer.headers["x-ratelimit-limit-tokens"] == "50"
        assert answer.headers["x-ratelimit-reset-tokens"].endswith("s")
        remaining.append(answer.headers["x-ratelimit-remaining-tokens"])
    # A plain answer's headers count its own tokens already.
    assert remaining == [str(50 - PER_CALL), "0"]
    with pytest.raises(openai.RateLimitError) as refused:
        c.chat.completions.create(model="default", messages=HI)
    error = refused.value.body
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "tokens"
    assert (
        f"token 'ci' may use 50 tokens per minute and has used {2 * PER_CALL} in the last "
        "minute" in error["message"]
    )
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
    assert refused.value.response.headers["x-ratelimit-remaining-tokens"] == "0"
    assert calls_received(wordy) == 2
    request_log.flush()
    row = RequestLog.objects.get(status=429)
    assert row.token_name == "ci" and "50 tokens per minute" in row.error


def test_a_streamed_answer_counts_its_tokens_though_the_caller_asked_no_usage(
    wordy, backend, client
):
    _, raw = token_create(name="ci", tpm=PER_CALL + 1, actor="test")
    c = client(raw)
    chunks = list(c.chat.completions.create(model="default", messages=HI, stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    # Usage was asked upstream all the same, and counted: one token of the minute is left.
    assert wordy.last.json()["stream_options"] == {"include_usage": True}
    answer = c.chat.completions.with_raw_response.create(model="default", messages=HI)
    assert answer.headers["x-ratelimit-remaining-tokens"] == "0"
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="default", messages=HI, stream=True)


def test_a_teams_tokens_per_minute_hold_for_all_its_tokens_together(wordy, backend, client):
    team = account_services.team_create(name="red", actor="test")
    account_services.team_update(team=team, tpm=PER_CALL + 1, actor="test")
    _, one = token_create(name="one", team=team, actor="test")
    _, two = token_create(name="two", team=team, tpm=1000, actor="test")
    client(one).chat.completions.create(model="default", messages=HI)
    answer = client(two).chat.completions.with_raw_response.create(model="default", messages=HI)
    # The team's limit is the tighter: the headers describe it.
    assert answer.headers["x-ratelimit-limit-tokens"] == str(PER_CALL + 1)
    with pytest.raises(openai.RateLimitError) as refused:
        client(one).chat.completions.create(model="default", messages=HI)
    assert "team 'red' may use 28 tokens per minute" in refused.value.body["message"]
