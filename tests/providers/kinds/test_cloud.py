"""AWS Bedrock and Google Vertex AI beyond the contract: the other way each authenticates,
what the environment must not add, their settings' checks, the token request itself, and
their secrets never shown (pages, audit rows, errors)."""

import base64
import json
from urllib.parse import parse_qs

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError
from django.urls import reverse

from providers import kinds, services
from providers.kinds.bedrock import BEDROCK_OK
from providers.kinds.vertex import (
    GOOGLE_TOKEN_URI,
    SERVICE_ACCOUNT_NOT_JSON,
    SERVICE_ACCOUNT_TOKEN_URI,
    SERVICE_ACCOUNT_WRONG_TYPE,
    VERTEX_TOKEN_FAILED,
)
from providers.models import AuditEvent, Provider
from providers.services.providers import KEY_REQUIRED_FOR_NEW_HOST
from tests.providers.kinds import cloud_keys
from tests.upstream_clouds import TEST_ACCESS_TOKEN

HI = [{"role": "user", "content": "hi"}]
AWS_SIGNING = {"region": cloud_keys.AWS_REGION, "access_key_id": cloud_keys.AWS_ACCESS_KEY_ID}
VERTEX_OPTIONS = {"project": cloud_keys.VERTEX_PROJECT, "location": cloud_keys.VERTEX_LOCATION}


def _bedrock(make_provider, upstream, **kwargs):
    kwargs.setdefault("api_key", cloud_keys.AWS_SECRET_ACCESS_KEY)
    kwargs.setdefault("options", AWS_SIGNING)
    return make_provider(name="aws", kind="bedrock", base_url=upstream.base_url, **kwargs)


def _vertex(make_provider, upstream, **kwargs):
    kwargs.setdefault("api_key", cloud_keys.service_account_json(upstream.base_url + "/token"))
    return make_provider(
        name="gcp", kind="vertex_ai", base_url=upstream.base_url, options=VERTEX_OPTIONS, **kwargs
    )


# --- Bedrock ---------------------------------------------------------------------------


def test_a_bedrock_api_key_is_sent_as_bearer_on_calls_and_tests(upstream, make_provider):
    _bedrock(
        make_provider, upstream, api_key=cloud_keys.BEDROCK_API_KEY, options={"region": "us-east-1"}
    )
    services.completion(HI, model="aws/amazon.nova-lite-v1:0")
    assert upstream.last.headers["authorization"] == f"Bearer {cloud_keys.BEDROCK_API_KEY}"
    result = services.provider_test(provider=Provider.objects.get(name="aws"))
    assert result.ok and result.message == BEDROCK_OK
    assert upstream.last.headers["authorization"] == f"Bearer {cloud_keys.BEDROCK_API_KEY}"


def test_the_servers_own_aws_variables_never_reach_a_signed_call(
    upstream, make_provider, monkeypatch
):
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "env-bearer-token-not-ours")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-session-token-not-ours")
    monkeypatch.setenv("AWS_BEDROCK_RUNTIME_ENDPOINT", "http://127.0.0.2:9")
    _bedrock(make_provider, upstream)
    services.completion(HI, model="aws/amazon.nova-lite-v1:0")
    request = upstream.last
    cloud_keys.assert_valid_sigv4(request)
    assert "x-amz-security-token" not in request.headers


def test_a_signed_connection_test_is_valid_for_its_request(upstream, make_provider):
    result = services.provider_test(provider=_bedrock(make_provider, upstream))
    assert result.ok, result.message
    cloud_keys.assert_valid_sigv4(upstream.last)
    assert upstream.last.json() == {"messages": [], "inferenceConfig": {"maxTokens": 0}}


def test_a_wrong_secret_is_reported_without_it(upstream, make_provider):
    provider = _bedrock(make_provider, upstream)
    echo = (
        f"The request signature we calculated does not match ({cloud_keys.AWS_SECRET_ACCESS_KEY})"
    )
    upstream.fail_next(403, {"message": echo})
    result = services.provider_test(provider=provider)
    assert not result.ok and result.status == 403
    assert cloud_keys.AWS_SECRET_ACCESS_KEY not in result.message
    upstream.fail_next(403, {"message": echo})
    with pytest.raises(services.ProviderError) as caught:
        services.completion(HI, model="aws/amazon.nova-lite-v1:0")
    assert cloud_keys.AWS_SECRET_ACCESS_KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        (
            {},
            "region",
            kinds.SETTING_REQUIRED.format(label="AWS Bedrock", field="region", example="us-east-1"),
        ),
        (
            {"region": "Paris"},
            "region",
            kinds.SETTING_INVALID.format(field="Region", value="Paris", example="us-east-1"),
        ),
        (
            {"region": "us-east-1", "access_key_id": "not an id"},
            "access_key_id",
            kinds.SETTING_INVALID.format(
                field="Access key ID", value="not an id", example="AKIAIOSFODNN7EXAMPLE"
            ),
        ),
    ],
)
def test_bedrock_settings_are_checked(db, options, field, message):
    with pytest.raises(ValidationError) as caught:
        services.provider_create(name="aws", kind="bedrock", api_key="k" * 40, options=options)
    assert caught.value.message_dict[field] == [message]


def test_the_default_hosts_follow_the_region_and_location(db):
    aws = services.provider_create(
        name="aws", kind="bedrock", api_key="k" * 40, options={"region": "ap-southeast-2"}
    )
    assert aws.effective_base_url == "https://bedrock-runtime.ap-southeast-2.amazonaws.com"
    vertex = kinds.KINDS["vertex_ai"]
    assert vertex.default_base_url_for({"location": "us-east5"}) == (
        "https://us-east5-aiplatform.googleapis.com"
    )
    assert (
        vertex.default_base_url_for({"location": "global"}) == "https://aiplatform.googleapis.com"
    )


# --- Vertex AI -----------------------------------------------------------------------


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_token_request_is_a_jwt_signed_by_the_service_accounts_key(upstream, make_provider):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    _vertex(make_provider, upstream)
    services.completion(HI, model="gcp/gemini-2.5-flash")
    (token_request,) = [r for r in upstream.requests if r.path == "/token"]
    assertion = parse_qs(token_request.body.decode())["assertion"][0]
    header, claims, signature = assertion.split(".")
    key = serialization.load_pem_private_key(cloud_keys.private_key_pem().encode(), None)
    key.public_key().verify(
        _b64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    claims = json.loads(_b64(claims))
    assert claims["iss"] == f"router@{cloud_keys.VERTEX_PROJECT}.iam.gserviceaccount.com"
    # google-auth names Google's endpoint as the audience, wherever token_uri points.
    assert claims["aud"] == GOOGLE_TOKEN_URI
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert upstream.last.headers["authorization"] == f"Bearer {TEST_ACCESS_TOKEN}"


def test_a_refused_token_is_explained_without_the_key(upstream, make_provider):
    provider = _vertex(make_provider, upstream)
    upstream.fail_next(
        400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    )
    result = services.provider_test(provider=provider)
    assert not result.ok
    assert result.message.startswith(VERTEX_TOKEN_FAILED.format(detail="")[:40])
    assert "invalid_grant" in result.message
    assert [r.path for r in upstream.requests] == ["/token"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("not json", SERVICE_ACCOUNT_NOT_JSON),
        (json.dumps({"type": "authorized_user", "refresh_token": "x"}), SERVICE_ACCOUNT_WRONG_TYPE),
        (
            json.dumps({"type": "external_account", "credential_source": {"url": "http://x"}}),
            SERVICE_ACCOUNT_WRONG_TYPE,
        ),
    ],
)
def test_only_a_service_account_key_is_accepted(db, key, message):
    with pytest.raises(ValidationError) as caught:
        services.provider_create(name="gcp", kind="vertex_ai", api_key=key, options=VERTEX_OPTIONS)
    assert caught.value.message_dict["api_key"] == [message]


def test_the_signed_assertion_goes_to_google_or_an_allowed_host_only(db, settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = []
    for token_uri in ("https://oauth2.example.com/token", "http://127.0.0.1:9/token"):
        key = cloud_keys.service_account_json(token_uri)
        with pytest.raises(ValidationError) as caught:
            services.provider_create(
                name="gcp", kind="vertex_ai", api_key=key, options=VERTEX_OPTIONS
            )
        message = SERVICE_ACCOUNT_TOKEN_URI.format(default=GOOGLE_TOKEN_URI)
        assert caught.value.message_dict["api_key"] == [message]
    google = services.provider_create(
        name="gcp",
        kind="vertex_ai",
        api_key=cloud_keys.service_account_json(GOOGLE_TOKEN_URI),
        options=VERTEX_OPTIONS,
    )
    assert google.api_key_hint == "key 012…4567"


def test_the_private_key_is_shown_nowhere(upstream, make_provider, client, login_as):
    login_as("editor")
    provider = _vertex(make_provider, upstream)
    private_line = cloud_keys.private_key_pem().splitlines()[1]
    pages = [
        client.get(reverse("provider_detail", args=[provider.name])),
        client.get(reverse("provider_edit", args=[provider.name])),
        client.get(reverse("overview")),
    ]
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert private_line not in html and "BEGIN PRIVATE KEY" not in html
    detail = pages[0].content.decode()
    assert "key 012…4567" in detail and "Service-account key (JSON)" in detail
    assert f"<dt>Project</dt><dd>{cloud_keys.VERTEX_PROJECT}</dd>" in detail
    for event in AuditEvent.objects.all():
        assert private_line not in json.dumps(event.changes)
    # An upstream error that quotes the key is redacted (the token is fetched first: google-auth
    # retries a token endpoint's 500 itself).
    services.completion(HI, model="gcp/gemini-2.5-flash")
    upstream.fail_next(500, {"error": {"message": f"bad key {private_line}"}})
    with pytest.raises(services.ProviderError) as caught:
        services.completion(HI, model="gcp/gemini-2.5-flash")
    assert private_line not in str(caught.value)


# --- The form ---------------------------------------------------------------------------


def test_the_form_shows_the_kinds_settings_and_saves_them(
    client, login_as, upstream, local_upstreams
):
    login_as("editor")
    html = client.get(reverse("provider_add") + "?kind=bedrock").content.decode()
    assert 'name="region"' in html and 'name="access_key_id"' in html
    assert "Secret access key or Bedrock API key" in html
    data = {
        "kind": "bedrock",
        "name": "aws",
        "base_url": upstream.base_url,
        "api_key": cloud_keys.AWS_SECRET_ACCESS_KEY,
        "region": cloud_keys.AWS_REGION,
        "access_key_id": cloud_keys.AWS_ACCESS_KEY_ID,
        "timeout": "10",
        "max_retries": "0",
        "enabled": "on",
    }
    response = client.post(reverse("provider_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    provider = Provider.objects.get(name="aws")
    assert provider.options == AWS_SIGNING
    html = client.get(reverse("provider_edit", args=["aws"])).content.decode()
    assert f'value="{cloud_keys.AWS_REGION}"' in html
    assert cloud_keys.AWS_SECRET_ACCESS_KEY not in html


def test_a_refused_vertex_form_never_sends_the_typed_key_back(client, login_as):
    login_as("editor")
    key = cloud_keys.service_account_json(GOOGLE_TOKEN_URI)
    html = client.get(reverse("provider_add") + "?kind=vertex_ai").content.decode()
    assert '<textarea name="api_key"' in html and 'name="project"' in html
    data = {"kind": "vertex_ai", "name": "gcp", "api_key": key, "project": "", "location": "x"}
    html = client.post(reverse("provider_add"), {**data, "timeout": "10", "max_retries": "0"})
    html = html.content.decode()
    assert "needs project" in html
    assert cloud_keys.private_key_pem().splitlines()[1] not in html
    assert not Provider.objects.exists()


# --- Settings on the command line, and a new region as a new host ----------------------------


def test_the_command_line_takes_the_kinds_settings(db, upstream, local_upstreams):
    from tests.providers.test_cli import routing

    key = cloud_keys.service_account_json(upstream.base_url + "/token")
    routing(
        *("provider", "add", "--name", "gcp", "--kind", "vertex_ai", "--api-key-stdin"),
        *("--base-url", upstream.base_url, "--setting", f"project={cloud_keys.VERTEX_PROJECT}"),
        *("--setting", "location=us-east5"),
        stdin=key,
    )
    provider = Provider.objects.get(name="gcp")
    assert provider.options == {"project": cloud_keys.VERTEX_PROJECT, "location": "us-east5"}
    routing("provider", "edit", "gcp", "--setting", "location=europe-west4")
    provider.refresh_from_db()
    assert provider.options["location"] == "europe-west4"
    shown = routing("provider", "show", "gcp")
    assert "europe-west4" in shown and "key 012…4567" in shown
    assert cloud_keys.private_key_pem().splitlines()[1] not in shown
    with pytest.raises(CommandError):
        routing("provider", "edit", "gcp", "--setting", "location")


def test_a_new_region_is_a_new_host_the_secret_is_asked_for_again(db):
    provider = services.provider_create(
        name="aws", kind="bedrock", api_key=cloud_keys.AWS_SECRET_ACCESS_KEY, options=AWS_SIGNING
    )
    with pytest.raises(ValidationError) as caught:
        services.provider_update(provider=provider, options={**AWS_SIGNING, "region": "us-west-2"})
    assert caught.value.message_dict["api_key"] == [KEY_REQUIRED_FOR_NEW_HOST]


def test_no_secret_reaches_the_logs_even_at_debug(upstream, make_provider, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    _bedrock(make_provider, upstream)
    _vertex(make_provider, upstream)
    services.completion(HI, model="aws/amazon.nova-lite-v1:0")
    services.completion(HI, model="gcp/gemini-2.5-flash")
    assertion = parse_qs(upstream.requests[-2].body.decode())["assertion"][0]
    for secret in (
        cloud_keys.AWS_SECRET_ACCESS_KEY,
        cloud_keys.private_key_pem().splitlines()[1],
        TEST_ACCESS_TOKEN,
        assertion[-40:],
    ):
        assert secret not in caplog.text
