"""Routing groups through LiteLLM's Router, against real HTTP servers on 127.0.0.1."""

import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from providers import services
from providers.models import AuditEvent, DefaultModel, Provider, RoutingGroup
from providers.services import DeploymentSpec as D
from tests.conftest import SECRET

HI = [{"role": "user", "content": "hi"}]


def _text(response) -> str:
    return response.choices[0].message.content


@pytest.fixture
def servers(upstream_factory, make_provider):
    a, b = upstream_factory("a"), upstream_factory("b")
    a.reply_text, b.reply_text = "from A", "from B"
    make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pb", base_url=b.base_url + "/v1")
    return a, b


def test_group_routes_through_its_deployment(servers):
    a, _ = servers
    services.group_save(name="fast", deployments=[D("pa", "small-model")])
    response = services.completion(HI, model="fast")
    assert _text(response) == "from A"
    assert a.last.json()["model"] == "small-model"
    assert services.answered_by(response) == "pa/small-model"


def test_group_test_is_one_real_call_and_names_the_deployment_that_answered(servers):
    a, _ = servers
    group = services.group_save(name="fast", deployments=[D("pa", "small-model")])
    result = services.group_test(group=group)
    assert result.ok and result.message == "answered by pa/small-model"
    assert result.latency_ms is not None
    assert a.last.json()["max_tokens"] == 1 and a.last.json()["model"] == "small-model"


def test_group_test_of_a_group_that_cannot_answer_says_why(servers):
    services.group_save(name="fast", deployments=[D("pa", "m")])
    services.provider_update(provider=Provider.objects.get(name="pa"), enabled=False)
    result = services.group_test(group=RoutingGroup.objects.get(name="fast"))
    assert not result.ok and result.latency_ms is None and "fast" in result.message


def test_group_test_is_recorded_on_the_group_as_its_last_test(servers):
    group = services.group_save(name="fast", deployments=[D("pa", "small-model")])
    before = RoutingGroup.objects.get(pk=group.pk)
    result = services.group_test(group=group)
    stored = RoutingGroup.objects.get(pk=group.pk)
    assert stored.last_test_ok is True
    assert stored.last_test_message == "answered by pa/small-model" == result.message
    assert stored.last_test_latency_ms == pytest.approx(result.latency_ms)
    assert stored.last_test_latency_ms > 0
    assert abs(timezone.now() - stored.last_test_at) < timedelta(minutes=1)
    # A test is not an edit: an editor open on the group stays current.
    assert (stored.version, stored.updated_at) == (before.version, before.updated_at)
    assert group.last_test_ok is True and group.last_test_at == stored.last_test_at


def test_a_failed_group_test_is_recorded_with_its_message_and_no_secret(servers):
    a, _ = servers
    group = services.group_save(name="fast", deployments=[D("pa", "m")])
    services.group_test(group=group)
    a.fail_next(401, {"error": {"message": f"Invalid key {SECRET}"}}, times=10)
    result = services.group_test(group=group)
    stored = RoutingGroup.objects.get(pk=group.pk)
    assert a.last.headers["authorization"] == f"Bearer {SECRET}"
    assert stored.last_test_ok is False and result.ok is False
    assert stored.last_test_message == result.message and "Invalid key" in result.message
    assert stored.last_test_latency_ms == pytest.approx(result.latency_ms)
    assert SECRET not in stored.last_test_message
    assert SECRET[-8:] not in stored.last_test_message


def test_a_group_that_cannot_be_called_records_why_without_a_latency(servers):
    services.group_save(name="fast", deployments=[D("pa", "m")])
    services.provider_update(provider=Provider.objects.get(name="pa"), enabled=False)
    services.group_test(group=RoutingGroup.objects.get(name="fast"))
    stored = RoutingGroup.objects.get(name="fast")
    assert stored.last_test_ok is False and stored.last_test_latency_ms is None
    assert "fast" in stored.last_test_message and stored.last_test_at is not None


def test_failing_group_falls_back_to_the_next_group(servers):
    a, b = servers
    a.fail_next(500, times=20)
    services.group_save(name="fast", deployments=[D("pb", "small-model")])
    services.group_save(name="quality", deployments=[D("pa", "big-model")], fallbacks=["fast"])
    response = services.completion(HI, model="quality")
    assert _text(response) == "from B"
    assert a.requests, "the first group was tried first"
    assert b.last.json()["model"] == "small-model"


def test_weights_spread_calls_as_configured(servers):
    a, b = servers
    services.group_save(name="spread", deployments=[D("pa", "m", weight=4), D("pb", "m", weight=1)])
    for _ in range(100):
        services.completion(HI, model="spread")
    share_a = len(a.requests) / (len(a.requests) + len(b.requests))
    assert 0.65 <= share_a <= 0.93, share_a


def test_streaming_yields_chunks_unchanged(servers):
    services.group_save(name="fast", deployments=[D("pa", "m")])
    for model in ("fast", "pa/m"):
        chunks = list(services.completion(HI, model=model, stream=True))
        texts = [
            c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
        ]
        assert len(texts) >= 3
        assert "".join(texts) == "from A"


def test_tool_call_comes_back_intact(servers):
    a, _ = servers
    a.tool_call("get_weather", {"city": "Oslo"})
    services.group_save(name="fast", deployments=[D("pa", "m")])
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    for model in ("fast", "pa/m"):
        call = services.completion(HI, model=model, tools=tools).choices[0].message.tool_calls[0]
        assert call.type == "function" and call.id
        assert call.function.name == "get_weather"
        assert call.function.arguments == '{"city": "Oslo"}'
    assert a.last.json()["tools"] == tools


def test_disabled_provider_leaves_the_group_and_empty_group_fails_clearly(servers, make_provider):
    a, b = servers
    services.group_save(name="fast", deployments=[D("pa", "m"), D("pb", "m")])
    services.provider_update(provider=services_provider("pa"), enabled=False)
    for _ in range(5):
        assert _text(services.completion(HI, model="fast")) == "from B"
    assert a.requests == []
    services.provider_update(provider=services_provider("pb"), enabled=False)
    with pytest.raises(services.Unavailable, match="no enabled deployment"):
        services.completion(HI, model="fast")


def services_provider(name):
    from providers.models import Provider

    return Provider.objects.get(name=name)


def test_default_may_be_a_group_and_cli_takes_one_argument(servers):
    services.group_save(name="fast", deployments=[D("pb", "m")])
    call_command("routing", "default", "set", "fast", stdout=io.StringIO())
    assert DefaultModel.objects.get().group.name == "fast"
    assert _text(services.completion(HI)) == "from B"
    with pytest.raises(CommandError, match="No routing group named 'nope'"):
        call_command("routing", "default", "set", "nope", stdout=io.StringIO())


def test_revert_from_group_to_model(servers):
    services.group_save(name="fast", deployments=[D("pb", "m")])
    services.default_model_set(provider=services_provider("pa"), model="m")
    services.default_model_set(group=RoutingGroup.objects.get(name="fast"))
    assert str(services.default_model_revert()) == "pa/m"
    assert str(services.default_model_revert()) == "fast"


@pytest.mark.parametrize(
    "setup, name, fallbacks, message",
    [
        ([], "a", ["a"], "cannot fall back to itself"),
        ([], "a", ["ghost"], "'ghost' is not a routing group"),
        ([("b", [])], "a", ["b"], None),
    ],
)
def test_fallback_validation(servers, setup, name, fallbacks, message):
    for group_name, group_fallbacks in setup:
        services.group_save(name=group_name, deployments=[D("pa", "m")], fallbacks=group_fallbacks)
    if message is None:
        assert services.group_save(name=name, deployments=[D("pa", "m")], fallbacks=fallbacks)
        return
    with pytest.raises(ValidationError, match=message):
        services.group_save(name=name, deployments=[D("pa", "m")], fallbacks=fallbacks)
    assert not RoutingGroup.objects.filter(name=name).exists()


def test_fallback_loop_is_rejected_and_nothing_changes(servers):
    services.group_save(name="a", deployments=[D("pa", "m")])
    services.group_save(name="b", deployments=[D("pb", "m")], fallbacks=["a"])
    group_a = RoutingGroup.objects.get(name="a")
    with pytest.raises(ValidationError, match="a → b → a"):
        services.group_save(group=group_a, name="a", deployments=[D("pa", "m")], fallbacks=["b"])
    assert not group_a.fallback_links.exists()


def test_unknown_provider_and_bad_model_are_reported_per_deployment(servers):
    with pytest.raises(ValidationError) as info:
        services.group_save(name="g", deployments=[D("ghost", "m"), D("pa", "bad model")])
    messages = info.value.message_dict["deployments"]
    assert any("Deployment 1" in m and "ghost" in m for m in messages)
    assert any("Deployment 2" in m for m in messages)


def test_removal_guards_and_audit(servers):
    services.group_save(name="fast", deployments=[D("pa", "m")], actor="alice")
    services.group_save(name="quality", deployments=[D("pb", "m")], fallbacks=["fast"])
    with pytest.raises(ValidationError, match="fall back to 'fast'"):
        services.group_remove(group=RoutingGroup.objects.get(name="fast"))
    with pytest.raises(ValidationError, match="serves routing groups"):
        services.provider_remove(provider=services_provider("pa"))
    event = AuditEvent.objects.filter(action="group.create", target="fast").get()
    assert event.actor_name == "alice" and event.changes["deployments"] == [[], ["pa/m"]]


def test_group_names_cannot_be_default(servers):
    with pytest.raises(ValidationError, match="reserved"):
        services.group_save(name="default", deployments=[D("pa", "m")])
