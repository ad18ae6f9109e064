"""LiteLLM config export and import of AWS Bedrock and Google Vertex AI providers: their
settings as LiteLLM's aws_* / vertex_* parameters, their secrets as os.environ/ references,
and an exported file that drives a real LiteLLM Router against the recording upstream."""

import json

import pytest
import yaml

from providers import services
from providers.importexport.litellm_read import KEY_UNUSABLE, PARAM_NOT_EMPTY
from providers.kinds.vertex import VERTEX_CREDENTIALS_NOT_JSON
from providers.models import Provider
from providers.routing.llm import litellm
from tests.providers.importexport.test_litellm_config import _export, _import, _resolve, _wipe
from tests.providers.kinds import cloud_keys
from tests.upstream_clouds import TEST_ACCESS_TOKEN

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def clouds(upstream, make_provider):
    make_provider(
        name="aws",
        kind="bedrock",
        base_url=upstream.base_url,
        api_key=cloud_keys.AWS_SECRET_ACCESS_KEY,
        options={"region": cloud_keys.AWS_REGION, "access_key_id": cloud_keys.AWS_ACCESS_KEY_ID},
    )
    make_provider(
        name="aws-key",
        kind="bedrock",
        api_key=cloud_keys.BEDROCK_API_KEY,
        options={"region": "us-east-1"},
    )
    make_provider(
        name="gcp",
        kind="vertex_ai",
        base_url=upstream.base_url,
        api_key=cloud_keys.service_account_json(upstream.base_url + "/token"),
        options={"project": cloud_keys.VERTEX_PROJECT, "location": cloud_keys.VERTEX_LOCATION},
    )
    return upstream


def _params(config, name):
    (item,) = [i for i in config["model_list"] if i["model_name"] == f"{name}/*"]
    return item["litellm_params"]


def test_the_export_names_litellms_parameters_and_holds_no_secret(clouds):
    text, env = _export(include_secrets=True)
    config = yaml.safe_load(text)
    aws = _params(config, "aws")
    assert aws["model"] == "bedrock/converse/*"
    assert aws["aws_region_name"] == cloud_keys.AWS_REGION
    assert aws["aws_access_key_id"] == cloud_keys.AWS_ACCESS_KEY_ID
    assert aws["aws_secret_access_key"] == "os.environ/AWS_API_KEY"
    assert aws["aws_bedrock_runtime_endpoint"] == clouds.base_url
    assert _params(config, "aws-key")["api_key"] == "os.environ/AWS_KEY_API_KEY"
    gcp = _params(config, "gcp")
    assert gcp["vertex_project"] == cloud_keys.VERTEX_PROJECT
    assert gcp["vertex_location"] == cloud_keys.VERTEX_LOCATION
    assert gcp["vertex_credentials"] == "os.environ/GCP_API_KEY"
    for secret in (
        cloud_keys.AWS_SECRET_ACCESS_KEY,
        cloud_keys.BEDROCK_API_KEY,
        cloud_keys.private_key_pem().splitlines()[1],
    ):
        assert secret not in text
    assert json.loads(env["GCP_API_KEY"])["private_key"] == cloud_keys.private_key_pem()


def test_the_exported_file_drives_a_litellm_router(clouds):
    text, env = _export(include_secrets=True)
    config = _resolve(yaml.safe_load(text), services.parse_env(services.render_env(env)))
    router = litellm().Router(model_list=config["model_list"])

    router.completion(model="aws/amazon.nova-lite-v1:0", messages=HI)
    cloud_keys.assert_valid_sigv4(clouds.last)
    router.completion(model="gcp/gemini-2.5-flash", messages=HI)
    assert clouds.last.path.endswith("/publishers/google/models/gemini-2.5-flash:generateContent")
    assert clouds.last.headers["authorization"] == f"Bearer {TEST_ACCESS_TOKEN}"


def test_round_trip_into_an_empty_database_gives_the_same_file(clouds):
    text, env = _export(include_secrets=True)
    env = services.parse_env(services.render_env(env))
    _wipe()
    report = _import(text, env)
    assert report.ok, report.errors
    assert _export()[0] == text
    aws = Provider.objects.get(name="aws")
    assert aws.options == {"access_key_id": cloud_keys.AWS_ACCESS_KEY_ID, "region": "eu-west-3"}
    assert aws.get_api_key() == cloud_keys.AWS_SECRET_ACCESS_KEY
    assert Provider.objects.get(name="aws-key").base_url == ""  # the region's default host
    again = _import(text, env)
    assert again.ok and not again.created and not again.updated


def _config(params):
    return yaml.safe_dump({"model_list": [{"model_name": "p/m", "litellm_params": params}]})


def test_a_hand_written_bedrock_entry_is_imported(db):
    params = {
        "model": "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0",
        "aws_access_key_id": "os.environ/AWS_ACCESS_KEY_ID",
        "aws_secret_access_key": "os.environ/AWS_SECRET_ACCESS_KEY",
        "aws_region_name": "us-west-2",
    }
    text = _config(params).replace("p/m", "p/anthropic.claude-3-5-haiku-20241022-v1:0")
    env = {
        "AWS_ACCESS_KEY_ID": cloud_keys.AWS_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": cloud_keys.AWS_SECRET_ACCESS_KEY,
    }
    report = _import(text, env)
    assert report.ok, report.errors
    provider = Provider.objects.get(name="p")
    assert provider.kind == "bedrock"
    assert provider.effective_base_url == "https://bedrock-runtime.us-west-2.amazonaws.com"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"model": "bedrock/m", "aws_region_name": "us-east-1", "aws_session_token": "x"},
            PARAM_NOT_EMPTY.format(key="aws_session_token"),
        ),
        (
            {"model": "vertex_ai/m", "vertex_credentials": "/etc/gcp/key.json"},
            KEY_UNUSABLE.format(key="vertex_credentials", what=VERTEX_CREDENTIALS_NOT_JSON),
        ),
        ({"model": "openai/m", "vertex_project": "p"}, "vertex_project"),
    ],
)
def test_what_cannot_be_stored_is_refused(db, params, message):
    report = _import(_config(params), {})
    assert not report.ok
    assert message in " ".join(report.errors)
