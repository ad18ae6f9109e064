"""Credentials for the cloud kinds' tests: known AWS keys to check SigV4 signatures with, and
a real service-account key (a fresh RSA key) whose token_uri is a local test server."""

from __future__ import annotations

import functools
import json
import re

from tests.upstream import RecordedRequest

AWS_ACCESS_KEY_ID = "AKIATESTTESTTESTTEST"
AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTSECRETKEY"
AWS_REGION = "eu-west-3"
BEDROCK_API_KEY = "ABSKQmVkcm9ja0FQSUtleS10ZXN0LWtleS1mb3ItdGVzdHM="
VERTEX_PROJECT = "acme-test-project"
VERTEX_LOCATION = "europe-west4"
_SIGNATURE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<sig>[0-9a-f]{64})"
)


@functools.cache
def _private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account_json(token_uri: str) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": VERTEX_PROJECT,
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": _private_key_pem(),
            "client_email": f"router@{VERTEX_PROJECT}.iam.gserviceaccount.com",
            "client_id": "100000000000000000001",
            "token_uri": token_uri,
        },
        indent=2,
    )


def private_key_pem() -> str:
    return _private_key_pem()


def assert_valid_sigv4(request: RecordedRequest, *, region: str = AWS_REGION) -> None:
    """Recompute the recorded request's signature with botocore from the known keys."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    match = _SIGNATURE.fullmatch(request.headers["authorization"])
    assert match, request.headers["authorization"]
    assert match["key"] == AWS_ACCESS_KEY_ID
    assert (match["region"], match["service"]) == (region, "bedrock")
    signed = match["signed"].split(";")
    assert "host" in signed and "x-amz-date" in signed
    headers = {name: request.headers[name] for name in signed if name != "host"}
    query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
    url = f"http://{request.headers['host']}{request.path}" + (f"?{query}" if query else "")
    aws = AWSRequest(method=request.method, url=url, data=request.body, headers=headers)
    aws.context["timestamp"] = request.headers["x-amz-date"]
    auth = SigV4Auth(Credentials(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), "bedrock", region)
    canonical = auth.canonical_request(aws)
    expected = auth.signature(auth.string_to_sign(aws, canonical), aws)
    assert match["sig"] == expected, "the signature does not match the recorded request"
