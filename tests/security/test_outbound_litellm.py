"""Every kind's model call goes through the pinned transport, sync and async, whichever of
LiteLLM's HTTP clients the kind uses (providers.routing.llm._pin_connections): a host that rebinds
to loopback is refused for each of them before any byte reaches the upstream.

If a LiteLLM upgrade adds a client these hooks do not reach, the kind using it fails here."""

import pytest
from asgiref.sync import async_to_sync

from providers import kinds, services, validators
from providers.routing import outbound
from tests.providers.kinds.test_contract import CASES
from tests.security.test_outbound_pinning import CHECKED_ADDRESS, CHECKED_NETWORK, dns  # noqa: F401

HI = [{"role": "user", "content": "hi"}]
pytestmark = pytest.mark.django_db


async def _consume(model: str) -> None:
    async for _ in await services.acompletion(HI, model=model, stream=True):
        pass


CALLS = {
    "sync": lambda model: services.completion(HI, model=model),
    "sync-stream": lambda model: list(services.completion(HI, model=model, stream=True)),
    "async": lambda model: async_to_sync(services.acompletion)(HI, model=model),
    "async-stream": lambda model: async_to_sync(_consume)(model),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("slug", sorted(kinds.KINDS))
def test_model_call_to_a_host_rebound_to_loopback_is_refused_for_every_kind(
    slug,
    call,
    dns,  # noqa: F811 - the fixture imported above
    settings,
    make_provider,
    upstream,
):
    case = CASES[slug]
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = [CHECKED_NETWORK]
    # Checked when saved (Vertex AI's token_uri too), rebound to loopback since.
    dns["rebind.test"] = [[CHECKED_ADDRESS]]
    port = upstream.base_url.rsplit(":", 1)[1]
    # Vertex AI's token request (its token_uri on the same host) is refused likewise.
    make_provider(name="p", **case.provider(slug, f"http://rebind.test:{port}"))
    dns["rebind.test"] = [["127.0.0.1"]]
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = [CHECKED_NETWORK]
    with pytest.raises(services.ProviderError) as caught:
        CALLS[call](f"p/{case.model}")
    reason = validators.ADDRESS_LOOPBACK % {"address": "rebind.test (resolves to 127.0.0.1)"}
    assert outbound.ADDRESS_REFUSED.format(host="rebind.test", reason=reason) in str(caught.value)
    assert upstream.requests == []
