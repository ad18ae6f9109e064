"""`.env` import of AWS Bedrock (access keys or a Bedrock API key, region) and Google Vertex
AI (GOOGLE_APPLICATION_CREDENTIALS names the key file: read by the command line only)."""

import io
import json

from django.core.management import call_command

from providers.importexport.env_file import KEY_FILE_NOT_READ
from providers.importexport.env_import import CREATE, SKIPPED, UNCHANGED, import_env
from providers.kinds import SETTING_INVALID
from providers.models import AuditEvent, Provider
from tests.providers.kinds import cloud_keys

AWS_ENV = f"""\
AWS_ACCESS_KEY_ID={cloud_keys.AWS_ACCESS_KEY_ID}
AWS_SECRET_ACCESS_KEY={cloud_keys.AWS_SECRET_ACCESS_KEY}
AWS_REGION_NAME=us-west-2
"""


def test_aws_access_keys_and_region_make_a_signing_bedrock_provider(db):
    report = import_env(text=AWS_ENV, dry_run=False, actor="test")
    assert [row.action for row in report.rows] == [CREATE]
    provider = Provider.objects.get(kind="bedrock")
    assert provider.name == "bedrock"
    assert provider.options == {
        "region": "us-west-2",
        "access_key_id": cloud_keys.AWS_ACCESS_KEY_ID,
    }
    assert provider.get_api_key() == cloud_keys.AWS_SECRET_ACCESS_KEY
    assert provider.effective_base_url == "https://bedrock-runtime.us-west-2.amazonaws.com"
    assert cloud_keys.AWS_SECRET_ACCESS_KEY not in str(report.rows)
    # The same file again changes nothing.
    again = import_env(text=AWS_ENV, dry_run=False, actor="test")
    assert [row.action for row in again.rows] == [UNCHANGED]


def test_a_bedrock_api_key_is_imported_as_the_key_with_the_sdks_region_spelling(db):
    text = f"AWS_BEARER_TOKEN_BEDROCK={cloud_keys.BEDROCK_API_KEY}\nAWS_REGION=eu-central-1\n"
    import_env(text=text, dry_run=False, actor="test")
    provider = Provider.objects.get(kind="bedrock")
    assert provider.options == {"region": "eu-central-1"}
    assert provider.get_api_key() == cloud_keys.BEDROCK_API_KEY


def test_a_malformed_region_skips_the_provider_naming_the_variable(db):
    report = import_env(text=AWS_ENV.replace("us-west-2", "Oregon"), dry_run=False, actor="test")
    (row,) = report.rows
    assert row.action == SKIPPED
    message = SETTING_INVALID.format(field="Region", value="Oregon", example="us-east-1")
    assert row.detail == f"AWS_REGION_NAME: {message}"
    assert not Provider.objects.exists()


def _vertex_env(tmp_path, token_uri="https://oauth2.googleapis.com/token") -> str:
    key_file = tmp_path / "sa.json"
    key_file.write_text(cloud_keys.service_account_json(token_uri))
    return (
        f"GOOGLE_APPLICATION_CREDENTIALS={key_file}\n"
        f"VERTEXAI_PROJECT={cloud_keys.VERTEX_PROJECT}\nVERTEXAI_LOCATION=us-central1\n"
    )


def test_the_command_line_reads_the_service_account_file(db, tmp_path):
    out = io.StringIO()
    env_file = tmp_path / ".env"
    env_file.write_text(_vertex_env(tmp_path))
    call_command("routing", "import-env", str(env_file), stdout=out, stderr=io.StringIO())
    provider = Provider.objects.get(kind="vertex_ai")
    info = json.loads(provider.get_api_key())
    assert info["private_key"] == cloud_keys.private_key_pem()
    assert provider.options == {"project": cloud_keys.VERTEX_PROJECT, "location": "us-central1"}
    assert provider.effective_base_url == "https://us-central1-aiplatform.googleapis.com"
    assert provider.api_key_hint == "key 012…4567"
    # Neither the report nor the audit trail holds the key.
    private = cloud_keys.private_key_pem().splitlines()[1]
    assert private not in out.getvalue()
    assert all(private not in json.dumps(e.changes) for e in AuditEvent.objects.all())


def test_the_dashboards_import_does_not_read_server_files(db, tmp_path):
    report = import_env(text=_vertex_env(tmp_path), dry_run=False, actor="test")
    (row,) = report.rows
    assert row.action == SKIPPED
    assert row.detail == KEY_FILE_NOT_READ.format(var="GOOGLE_APPLICATION_CREDENTIALS")
    assert not Provider.objects.exists()


def test_a_key_file_sending_its_assertion_elsewhere_is_refused(db, tmp_path, settings):
    settings.ROUTING_ALLOWED_PRIVATE_HOSTS = []
    text = _vertex_env(tmp_path, token_uri="https://127.0.0.1/token")
    report = import_env(text=text, dry_run=False, actor="test", read_files=True)
    (row,) = report.rows
    assert row.action == SKIPPED
    assert row.detail.startswith("GOOGLE_APPLICATION_CREDENTIALS: ")
    assert "token_uri" in row.detail
    assert cloud_keys.private_key_pem().splitlines()[1] not in row.detail
