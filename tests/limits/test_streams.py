"""Streams and usage: asked upstream always (LiteLLM keeps it otherwise), given to callers
that asked and only to them, and estimated for a stream its caller abandons."""

from __future__ import annotations

import pytest

from gateway.services import token_create
from limits import counters
from tests.limits.conftest import HI
from usage import request_log
from usage.models import RequestLog

# Every test twice: relayed without LiteLLM, and through LiteLLM (tests/conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("both_paths")]


def test_a_caller_that_asks_for_usage_gets_it_in_openais_shape(world, backend, client):
    _, raw = token_create(name="ci", tpm=1000, actor="test")
    chunks = list(
        client(raw).chat.completions.create(
            model="default", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    [last] = [chunk for chunk in chunks if chunk.usage is not None]
    assert last is chunks[-1] and last.choices == []
    assert last.usage.prompt_tokens == 7


def test_a_caller_that_did_not_ask_gets_no_usage_though_it_was_asked_upstream(world, client):
    _, raw = token_create(name="ci", actor="test")  # no limits: the same for every caller
    chunks = list(client(raw).chat.completions.create(model="default", messages=HI, stream=True))
    assert world.last.json()["stream_options"] == {"include_usage": True}
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    # The request log has the tokens all the same.
    request_log.flush()
    row = RequestLog.objects.get()
    assert (row.prompt_tokens, row.completion_tokens) == (7, 3)


def test_an_abandoned_stream_counts_its_estimated_tokens(world, backend, client):
    world.reply_text = " ".join(["word"] * 40)
    release = world.hold_stream(after=3)  # the role chunk and two words, then wait
    _, raw = token_create(name="ci", tpm=1000, actor="test")
    c = client(raw)
    settled = counters.settled_count()
    stream = c.chat.completions.create(model="default", messages=HI, stream=True)
    chunks = iter(stream)
    next(chunks), next(chunks), next(chunks)
    stream.close()  # the connection with it
    assert counters.wait_settled(settled + 1)
    release.set()
    answer = c.chat.completions.with_raw_response.create(model="default", messages=HI)
    # The abandoned call's estimate (its prompt and the words received, not all 40), then
    # this call's 47 tokens.
    used = 1000 - int(answer.headers["x-ratelimit-remaining-tokens"]) - 47
    request_log.flush()
    row = RequestLog.objects.get(status=499)
    assert row.error.endswith("its tokens are estimated.")
    assert used == row.prompt_tokens + row.completion_tokens
    assert 0 < row.completion_tokens < 40 and row.prompt_tokens > 0
