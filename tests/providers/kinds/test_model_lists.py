"""Model lists as each vendor serves them: Together's bare array, Anthropic's and Gemini's
pages; the connection test reads them all (a bounded number of pages) and says what went
wrong when the answer is not a list."""

import pytest

from providers import kinds, services
from providers.services.connection import NOT_A_MODEL_LIST, NOT_JSON, TOO_MANY_PAGES
from tests.conftest import SECRET

MANY = [f"model-{i:02d}" for i in range(7)]


def test_together_bare_array_is_its_model_list(upstream, make_provider):
    upstream.list_format = "array"
    upstream.models = ["meta-llama/Llama-3.3-70B-Instruct-Turbo", "Qwen/Qwen2.5-72B"]
    provider = make_provider(name="t", kind="together", base_url=upstream.base_url + "/v1")
    result = services.provider_test(provider=provider)
    assert result.ok, result.message
    assert result.message == "OK: 2 models found"
    assert result.models == sorted(upstream.models)
    provider.refresh_from_db()
    assert provider.consecutive_failures == 0 and provider.discovered_models == result.models


def test_json_that_is_not_a_list_is_not_called_not_json(upstream, make_provider):
    upstream.list_format = "openai"  # {"data": [...]}: not what Together answers
    provider = make_provider(name="t", kind="together", base_url=upstream.base_url + "/v1")
    result = services.provider_test(provider=provider)
    kind = kinds.KINDS["together"]
    assert not result.ok
    assert result.message == NOT_A_MODEL_LIST.format(
        label=kind.label, example=kind.default_base_url
    )
    assert "not JSON" not in result.message


def test_an_answer_that_is_not_json_says_so(upstream, make_provider):
    upstream.fail_next(200, "<html>a login page</html>")
    provider = make_provider(name="t", kind="together", base_url=upstream.base_url + "/v1")
    result = services.provider_test(provider=provider)
    assert not result.ok and result.message == NOT_JSON


def test_anthropic_list_is_read_page_by_page(upstream, make_provider):
    upstream.models = list(MANY)
    upstream.page_size = 3  # the server gives fewer than asked for, as it may
    provider = make_provider(name="a", kind="anthropic", base_url=upstream.base_url)
    result = services.provider_test(provider=provider)
    assert result.ok, result.message
    assert result.models == MANY
    sent = upstream.requests
    assert [r.path for r in sent] == ["/v1/models"] * 3
    assert [r.query.get("after_id") for r in sent] == [None, ["model-02"], ["model-05"]]
    assert all(r.query["limit"] == ["1000"] for r in sent)
    assert all(r.headers["x-api-key"] == SECRET for r in sent)
    assert all(r.headers["anthropic-version"] == "2023-06-01" for r in sent)


def test_anthropic_list_without_limit_would_stop_at_twenty(upstream, make_provider):
    """The vendor's default page is 20: the kind asks for the most a page may hold."""
    upstream.models = [f"claude-{i:02d}" for i in range(45)]
    provider = make_provider(name="a", kind="anthropic", base_url=upstream.base_url)
    result = services.provider_test(provider=provider)
    assert result.ok and len(result.models) == 45
    assert len(upstream.requests) == 1


def test_gemini_list_follows_next_page_tokens(upstream, make_provider):
    upstream.models = list(MANY)
    upstream.page_size = 2
    provider = make_provider(name="g", kind="gemini", base_url=upstream.base_url)
    result = services.provider_test(provider=provider)
    assert result.ok, result.message
    assert result.models == MANY
    sent = upstream.requests
    assert [r.path for r in sent] == ["/v1beta/models"] * 4
    assert [r.query.get("pageToken") for r in sent] == [None, ["2"], ["4"], ["6"]]
    assert all(r.query["pageSize"] == ["1000"] for r in sent)
    assert all(r.headers["x-goog-api-key"] == SECRET for r in sent)
    assert all("key" not in r.query for r in sent)  # never the key in the URL


@pytest.mark.parametrize("slug", ["anthropic", "gemini"])
def test_pages_are_bounded(slug, upstream, make_provider):
    upstream.models = [f"m-{i:03d}" for i in range(kinds.MAX_MODEL_PAGES + 5)]
    upstream.page_size = 1
    provider = make_provider(name="p", kind=slug, base_url=upstream.base_url)
    result = services.provider_test(provider=provider)
    assert result.ok
    assert len(upstream.requests) == kinds.MAX_MODEL_PAGES
    assert result.models == upstream.models[: kinds.MAX_MODEL_PAGES]
    assert result.message == TOO_MANY_PAGES.format(
        pages=kinds.MAX_MODEL_PAGES, count=kinds.MAX_MODEL_PAGES
    )
