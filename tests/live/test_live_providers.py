"""Live tests: real providers, when their credentials are in the environment.

Every test here is marked `live` and talks to a real provider (OpenAI, Anthropic, Azure
OpenAI, Azure AI Foundry, a local Ollama, any OpenAI-compatible endpoint). Without the
variables a provider needs, its tests are skipped with a reason that names them: pytest
reports them as skipped, never as passed. The default test command (`bin/test`) runs them;
run only them with `bin/test -m live`.

The switch test proves the product's promise end to end: calls start on one provider, the
default is switched in the dashboard (and back through the service), and the very next call
reaches the other provider.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from providers import services
from usage import request_log
from usage.models import RequestLog

pytestmark = pytest.mark.live

HI = [{"role": "user", "content": "Reply with the single word: pong"}]
PREFIX = "ROUTING_LIVE_"


@dataclass(frozen=True)
class LiveProvider:
    """One real provider, configured from ROUTING_LIVE_<NAME>_* variables."""

    name: str  # also the variables' middle part: ROUTING_LIVE_OPENAI_API_KEY
    kind: str
    needs: tuple[str, ...]  # suffixes that must be set, e.g. ("API_KEY",)
    optional: tuple[str, ...] = ()
    default_model: str = ""
    default_api_version: str = ""

    def var(self, suffix: str) -> str:
        return f"{PREFIX}{self.name.upper()}_{suffix}"

    def env(self, suffix: str, default: str = "") -> str:
        return os.environ.get(self.var(suffix), "").strip() or default

    @property
    def missing(self) -> list[str]:
        return [self.var(s) for s in self.needs if not self.env(s)]

    @property
    def skip_reason(self) -> str:
        reason = f"live {self.name}: set {', '.join(self.missing)} to run it"
        if self.optional:
            reason += f" (optional: {', '.join(self.var(s) for s in self.optional)})"
        return reason

    @property
    def model(self) -> str:
        return self.env("MODEL", self.default_model)

    def create(self, settings):
        base_url = self.env("BASE_URL")
        host = urlsplit(base_url).hostname if base_url else None
        if host:
            # A person's own endpoint may sit on a private network (a LAN Ollama or vLLM).
            settings.ROUTING_ALLOWED_PRIVATE_HOSTS = [
                *settings.ROUTING_ALLOWED_PRIVATE_HOSTS,
                host,
            ]
        return services.provider_create(
            name=f"live-{self.name.replace('_', '-')}",
            kind=self.kind,
            base_url=base_url,
            api_key=self.env("API_KEY"),
            api_version=self.env("API_VERSION", self.default_api_version),
            timeout=60,
            actor="live-test",
        )


PROVIDERS = [
    LiveProvider(
        "openai", "openai", ("API_KEY",), ("MODEL", "BASE_URL"), default_model="gpt-4o-mini"
    ),
    LiveProvider(
        "anthropic",
        "anthropic",
        ("API_KEY",),
        ("MODEL", "BASE_URL"),
        default_model="claude-haiku-4-5",
    ),
    # Azure OpenAI: MODEL is the deployment name, BASE_URL https://<resource>.openai.azure.com
    LiveProvider(
        "azure",
        "azure",
        ("API_KEY", "BASE_URL", "MODEL"),
        ("API_VERSION",),
        default_api_version="2024-10-21",
    ),
    # Azure AI Foundry: BASE_URL https://<resource>.services.ai.azure.com/models
    LiveProvider("azure_ai", "azure_ai", ("API_KEY", "BASE_URL", "MODEL")),
    # BASE_URL e.g. http://localhost:11434
    LiveProvider("ollama", "ollama", ("BASE_URL",), ("MODEL",), default_model="llama3.2"),
    # Any OpenAI-compatible server: BASE_URL usually ends in /v1.
    LiveProvider("compat", "openai_compatible", ("BASE_URL", "MODEL"), ("API_KEY",)),
]


def _configured() -> list[LiveProvider]:
    return [p for p in PROVIDERS if not p.missing]


def _require(spec: LiveProvider) -> None:
    if spec.missing:
        pytest.skip(spec.skip_reason)


def _answered_by() -> str:
    """The provider that served the last call, from the request log the service writes."""
    request_log.flush()
    last = RequestLog.objects.order_by("-id").first()
    assert last is not None and last.ok, last and last.error
    return last.provider


@pytest.mark.parametrize("spec", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_connection_test_lists_the_models(spec, db, settings):
    _require(spec)
    provider = spec.create(settings)
    result = services.provider_test(provider=provider, actor="live-test")
    assert result.ok, result.message
    assert result.models, "the provider listed no model"
    assert provider.probes.get().ok


@pytest.mark.parametrize("spec", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_a_call_reaches_the_provider(spec, db, settings):
    _require(spec)
    provider = spec.create(settings)
    response = services.completion(HI, model=f"{provider.name}/{spec.model}", max_tokens=64)
    assert response.choices, "no choice in the answer"
    assert _answered_by() == provider.name


def test_a_switch_reaches_the_other_provider_on_the_very_next_call(db, settings, client):
    configured = _configured()
    if len(configured) < 2:
        have = ", ".join(p.name for p in configured) or "none"
        pytest.skip(
            f"live switch: needs two providers configured (have: {have}), e.g. "
            "ROUTING_LIVE_OPENAI_API_KEY and ROUTING_LIVE_ANTHROPIC_API_KEY; the other live "
            "tests' reasons name each provider's variables"
        )
    first, second = configured[:2]
    a, b = first.create(settings), second.create(settings)

    services.default_model_set(provider=a, model=first.model, actor="live-test")
    services.completion(HI, max_tokens=64)
    assert _answered_by() == a.name

    # Switch in the dashboard, as an editor would: the very next call goes to the other one.
    from django.contrib.auth.models import Group, User

    editor = User.objects.create_user("live-editor")
    editor.groups.add(Group.objects.get_or_create(name="editor")[0])
    client.force_login(editor)
    response = client.post(reverse("default_set"), {"provider": b.name, "model": second.model})
    assert response.status_code == 302, response.content[:500]
    services.completion(HI, max_tokens=64)
    assert _answered_by() == b.name

    # And back through the service layer, as the command line does.
    services.default_model_set(provider=a, model=first.model, actor="live-test")
    services.completion(HI, max_tokens=64)
    assert _answered_by() == a.name
