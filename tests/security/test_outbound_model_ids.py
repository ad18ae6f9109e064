"""A caller chooses the model ID on every call (`<provider>/<model id>` on the gateway), and
some kinds put it in the provider's URL path (Azure's deployments, Gemini's models). A model
ID that is not one must never reach the provider, and must not grow the process's memory."""

import pytest

from providers import services
from providers.routing import live
from tests.conftest import SECRET

HI = [{"role": "user", "content": "hi"}]
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model",
    [
        "../../../admin/secret?x=",
        "gpt-4o/../../deployments/other",
        "gpt-4o?api-version=2020-01-01",
        "gpt-4o#fragment",
        "gpt 4o",
    ],
)
@pytest.mark.parametrize("kind", ["azure", "gemini", "openai"])
def test_model_id_that_rewrites_the_url_never_reaches_the_provider(
    make_provider, upstream, kind, model
):
    make_provider(name="p", kind=kind, base_url=upstream.base_url, api_version="2024-10-21")
    with pytest.raises(services.UnknownModel, match="is not a valid model ID"):
        services.completion(HI, model=f"p/{model}")
    assert upstream.requests == []


def test_a_valid_model_id_still_reaches_the_provider_path(make_provider, upstream):
    make_provider(name="p", kind="azure", base_url=upstream.base_url, api_version="2024-10-21")
    services.completion(HI, model="p/gpt-4o-mini")
    assert "/deployments/gpt-4o-mini/" in upstream.last.path


def test_many_distinct_model_ids_do_not_grow_the_cache_without_bound(make_provider, upstream):
    make_provider(name="p", base_url=upstream.base_url + "/v1")
    entry = live.snapshot().providers["p"]
    for i in range(live.PARAMS_CACHED + 50):
        entry.params(f"model-{i}")
    assert len(entry._params) == live.PARAMS_CACHED


def test_snapshot_and_targets_never_print_the_key_or_header_values(make_provider, upstream):
    header = "hv-" + "Zq9Xw8Vu7Ts6"
    make_provider(name="p", base_url=upstream.base_url + "/v1", headers={"X-Org": header})
    snap = live.snapshot()
    printed = repr(snap) + repr(snap.resolve("p/m")) + repr(snap.providers["p"])
    assert SECRET not in printed and header not in printed
    assert "p" in repr(snap.providers["p"])  # still says which provider it is
