"""An AWS Bedrock provider through the real gateway, streamed: LiteLLM calls ConverseStream,
whose answer is AWS's binary event stream (tests/upstream_clouds.py frames it as Bedrock
does), signed with SigV4 like any Bedrock call; the `openai` and `anthropic` SDKs read the
text, and the request log gets the usage of the stream's metadata event."""

from __future__ import annotations

import anthropic
import pytest

from gateway.services import token_create
from tests.gateway import test_gateway
from tests.gateway.test_gateway import client
from tests.providers.kinds import cloud_keys
from usage import pricing, request_log
from usage.models import RequestLog

gateway = test_gateway.gateway

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
MODEL = "amazon.nova-lite-v1:0"  # priced in LiteLLM's map
STREAM_PATH = "/model/amazon.nova-lite-v1%3A0/converse-stream"


@pytest.fixture
def setup(upstream_factory, make_provider):
    aws = upstream_factory("aws")
    aws.reply_text = "Hello from Bedrock streaming"
    make_provider(
        name="aws",
        kind="bedrock",
        base_url=aws.base_url,
        api_key=cloud_keys.AWS_SECRET_ACCESS_KEY,
        options={"region": cloud_keys.AWS_REGION, "access_key_id": cloud_keys.AWS_ACCESS_KEY_ID},
    )
    _, raw = token_create(name="app", actor="test")
    return aws, raw


def test_a_streamed_chat_completion_through_bedrock(gateway, setup):
    aws, token = setup
    stream = client(gateway, token).chat.completions.create(
        model=f"aws/{MODEL}", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from Bedrock streaming"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (7, 4)
    sent = aws.last
    assert sent.path == STREAM_PATH
    assert sent.json()["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
    cloud_keys.assert_valid_sigv4(sent)
    request_log.flush()
    row = RequestLog.objects.get()
    assert (row.provider, row.model, row.ok, row.stream) == ("aws", MODEL, True, True)
    assert (row.prompt_tokens, row.completion_tokens) == (7, 4)
    assert row.cost == pytest.approx(pricing.cost(f"bedrock/converse/{MODEL}", 7, 4))
    assert row.cost > 0


def test_a_streamed_message_through_bedrock(gateway, setup):
    aws, token = setup
    c = anthropic.Anthropic(base_url=gateway, api_key=token, max_retries=0, timeout=30)
    with c.messages.stream(model=f"aws/{MODEL}", max_tokens=50, messages=HI) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "Hello from Bedrock streaming"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (7, 4)
    assert aws.last.path == STREAM_PATH
    cloud_keys.assert_valid_sigv4(aws.last)
    request_log.flush()
    row = RequestLog.objects.get()
    assert (row.provider, row.stream, row.prompt_tokens, row.completion_tokens) == (
        "aws", True, 7, 4
    )  # fmt: skip
