"""POST /v1/completions (legacy text completions) through a real server with the official
`openai` SDK, plain and streamed, against the recording upstream: a provider's own
/completions where LiteLLM has one, chat completions bridged where not."""

import httpx
import openai
import pytest

from gateway.chat_params import COMPLETIONS
from gateway.services import token_create
from providers import services
from providers.routing.llm import litellm
from providers.services import DeploymentSpec as D
from tests.gateway import test_gateway
from tests.gateway.test_gateway import client
from usage import request_log
from usage.models import RequestLog

gateway = test_gateway.gateway
setup = test_gateway.setup

# Every test twice: relayed without LiteLLM, and through LiteLLM (tests/conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("both_paths")]
INSTRUCT = "pa/gpt-3.5-turbo-instruct"


def test_a_plain_completion_reaches_the_providers_completions(gateway, setup):
    a, _, token = setup
    answer = client(gateway, token).completions.create(
        model=INSTRUCT, prompt="Say hello", max_tokens=5, echo=False
    )
    assert answer.object == "text_completion"
    assert answer.choices[0].text == "from A"
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (7, 2)
    sent = a.last
    assert sent.path == "/v1/completions"
    assert sent.headers["authorization"].startswith("Bearer sk-test-")
    assert sent.json() == {
        "model": "gpt-3.5-turbo-instruct", "prompt": "Say hello", "max_tokens": 5, "echo": False
    }  # fmt: skip


def test_a_streamed_completion(gateway, setup):
    a, _, token = setup
    stream = client(gateway, token).completions.create(model=INSTRUCT, prompt="Hi", stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "from A"
    assert chunks[-1].choices[0].finish_reason == "stop"
    # Usage is asked of the provider to count the call; the caller did not ask for it.
    assert a.last.json()["stream_options"] == {"include_usage": True}
    assert all(c.usage is None for c in chunks)
    asked = client(gateway, token).completions.create(
        model=INSTRUCT, prompt="Hi", stream=True, stream_options={"include_usage": True}
    )
    last = list(asked)[-1]
    assert last.choices == [] and last.usage.completion_tokens == 2
    with httpx.stream(
        "POST",
        gateway + "/v1/completions",
        headers={"Authorization": f"Bearer {token}"},
        json={"model": INSTRUCT, "prompt": "Hi", "stream": True},
    ) as raw:
        lines = [line for line in raw.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    request_log.flush()
    rows = RequestLog.objects.filter(stream=True)
    assert rows.count() == 3
    assert {(r.token_name, r.prompt_tokens, r.completion_tokens, r.ok) for r in rows} == {
        ("app", 7, 2, True)
    }


def test_a_chat_model_is_bridged_through_chat_completions(gateway, setup):
    a, b, token = setup
    c = client(gateway, token)
    answer = c.completions.create(model="default", prompt="Say hello")
    assert answer.choices[0].text == "from A"
    assert a.last.path == "/v1/chat/completions"
    assert a.last.json()["messages"] == [{"role": "user", "content": "Say hello"}]
    assert a.last.json()["model"] == "gpt-4o-mini"
    services.group_save(name="fast", deployments=[D("pb", "gpt-4o-mini")])
    assert c.completions.create(model="fast", prompt="x").choices[0].text == "from B"


def test_logged_with_its_token_tokens_and_cost(gateway, setup):
    _, _, token = setup
    client(gateway, token).completions.create(model="default", prompt="Say hello")
    request_log.flush()
    row = RequestLog.objects.get()
    assert (row.token_name, row.provider, row.model, row.prompt_tokens, row.ok) == (
        "app", "pa", "gpt-4o-mini", 7, True
    )  # fmt: skip
    assert row.cost and row.cost > 0


def test_an_instruct_model_is_priced_as_litellms_text_completion_model(gateway, setup):
    _, _, token = setup
    client(gateway, token).completions.create(model=INSTRUCT, prompt="Say hello")
    request_log.flush()
    row = RequestLog.objects.get()
    assert (row.model, row.prompt_tokens, row.completion_tokens) == ("gpt-3.5-turbo-instruct", 7, 2)
    # The price map keeps it as text-completion-openai's.
    price = litellm().model_cost["gpt-3.5-turbo-instruct"]
    assert price["litellm_provider"] == "text-completion-openai"
    expected = 7 * price["input_cost_per_token"] + 2 * price["output_cost_per_token"]
    assert row.cost == pytest.approx(expected) and row.cost > 0


def test_allowed_models_and_refused_parameters(gateway, setup):
    a, _, _ = setup
    _, limited = token_create(name="limited", allowed_models=[INSTRUCT])
    c = client(gateway, limited)
    with pytest.raises(openai.PermissionDeniedError):
        c.completions.create(model="default", prompt="x")
    with pytest.raises(openai.BadRequestError) as info:
        c.completions.create(model=INSTRUCT, prompt="x", extra_body={"messages": []})
    assert info.value.body["message"] == COMPLETIONS.unknown("messages")
    with pytest.raises(openai.BadRequestError) as info:
        c.completions.create(model=INSTRUCT, prompt="")
    assert info.value.body["param"] == "prompt"
    assert a.requests == []
