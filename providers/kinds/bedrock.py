"""AWS Bedrock: the Converse API through LiteLLM's `bedrock/converse/<model>` route, each
request signed with SigV4 (an access key ID and its secret) or carrying a Bedrock API key
as Bearer. The host is the region's bedrock-runtime endpoint; a base URL, when given,
replaces it (a VPC endpoint) and passes the same address rules as every kind's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .base import EnvConvention, KindField, Probe, ProviderKind

BEDROCK_OK = (
    "OK: Bedrock accepted the credentials. Its runtime API cannot list models, so the test "
    "sent a request it refuses (maxTokens 0), which generates nothing and costs no tokens."
)
# Any model ID: the probe is refused for its content, after the signature was checked.
BEDROCK_PROBE_MODEL = "amazon.nova-micro-v1:0"
# LiteLLM's spelling first, then the AWS SDKs'.
AWS_REGION_VARS = ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")
AWS_REGION = KindField(
    name="region",
    label="Region",
    example="us-east-1",
    help_text="The AWS region whose Bedrock endpoint is called (AWS_REGION_NAME).",
    required=True,
    pattern=r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}",
)
AWS_ACCESS_KEY_ID = KindField(
    name="access_key_id",
    label="Access key ID",
    example="AKIAIOSFODNN7EXAMPLE",
    help_text="With it, the key field holds its secret access key and every request is "
    "signed (SigV4). Empty: the key field holds a Bedrock API key, sent as Bearer.",
    pattern=r"[A-Z0-9]{16,128}",
)


@dataclass(frozen=True)
class BedrockKind(ProviderKind):
    """Calls go to LiteLLM's `bedrock/converse/<model>` route (the Converse API, one wire
    format for every model family); LiteLLM signs them with botocore."""

    def default_base_url_for(self, options: dict | None) -> str:
        region = (options or {}).get("region") or "{region}"
        return self.default_base_url.format(region=region)

    def model_from_litellm(self, model_id: str) -> str:
        # bedrock/converse/<id> and bedrock/<id> name the same model.
        return model_id.removeprefix("converse/")

    def call_params(self, function: str, params: dict[str, Any]) -> dict[str, Any]:
        # Embeddings are no Converse call: LiteLLM embeds through bedrock/<model ID>.
        if function != "aembedding":
            return params
        return {**params, "model": params["model"].replace("/converse/", "/", 1)}

    def _signs(self, options: dict | None) -> bool:
        return bool((options or {}).get("access_key_id"))

    def litellm_model(self, model: str) -> str:
        return f"{self.litellm_prefix}/converse/{model}"

    def connection_params(
        self, *, base_url: str, api_key: str, api_version: str, options: dict
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "aws_region_name": options.get("region", ""),
            # Always explicit: LiteLLM would otherwise read AWS_BEDROCK_RUNTIME_ENDPOINT.
            "aws_bedrock_runtime_endpoint": base_url,
        }
        if self._signs(options):
            params["aws_access_key_id"] = options["access_key_id"]
            params["aws_secret_access_key"] = api_key
            # "" and not None: LiteLLM falls back to AWS_BEARER_TOKEN_BEDROCK and
            # AWS_SESSION_TOKEN from os.environ for a missing value.
            params["api_key"] = ""
            params["aws_session_token"] = ""
        else:
            params["api_key"] = api_key
        return params

    def probe(self, base_url: str, api_version: str) -> Probe:
        return Probe(
            # Quoted as LiteLLM quotes model IDs (":" too), so both sign the same path.
            url=f"{base_url.rstrip('/')}/model/{quote(BEDROCK_PROBE_MODEL, safe='')}/converse",
            method="POST",
            json={"messages": [], "inferenceConfig": {"maxTokens": 0}},
            lists_models=False,
            ok_message=BEDROCK_OK,
        )

    def request_headers(
        self, *, method: str, url: str, body: bytes, api_key: str, options: dict, timeout: float
    ) -> dict[str, str]:
        if not self._signs(options):
            return self.auth_headers(api_key)
        return sigv4_headers(
            method=method,
            url=url,
            body=body,
            access_key_id=options["access_key_id"],
            secret_access_key=api_key,
            region=options.get("region", ""),
        )


def sigv4_headers(
    *, method: str, url: str, body: bytes, access_key_id: str, secret_access_key: str, region: str
) -> dict[str, str]:
    """The headers that sign one Bedrock request (Authorization, X-Amz-Date), by botocore."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method=method, url=url, data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(access_key_id, secret_access_key), "bedrock", region).add_auth(request)
    return dict(request.headers.items())


BEDROCK = BedrockKind(
    slug="bedrock",
    label="AWS Bedrock",
    litellm_prefix="bedrock",
    default_base_url="https://bedrock-runtime.{region}.amazonaws.com",
    model_example="anthropic.claude-3-5-haiku-20241022-v1:0",
    fields=(AWS_REGION, AWS_ACCESS_KEY_ID),
    api_key_label="Secret access key or Bedrock API key",
    litellm_base_param="aws_bedrock_runtime_endpoint",
    litellm_key_params=("aws_secret_access_key", "api_key"),
    litellm_option_params=(("region", "aws_region_name"), ("access_key_id", "aws_access_key_id")),
    litellm_empty_params=("aws_session_token",),
    env_conventions=(
        EnvConvention(
            api_key=("AWS_SECRET_ACCESS_KEY",),
            options=(("access_key_id", ("AWS_ACCESS_KEY_ID",)), ("region", AWS_REGION_VARS)),
        ),
        EnvConvention(
            api_key=("AWS_BEARER_TOKEN_BEDROCK",), options=(("region", AWS_REGION_VARS),)
        ),
    ),
    api_key_help="With an access key ID: its secret access key. Without: a Bedrock API key "
    "(AWS_BEARER_TOKEN_BEDROCK).",
)
