"""The .env variables each kind's convention reads that the provider-wiring fixes added."""

from providers.importexport.env_import import import_env
from providers.models import Provider

FOUNDRY = """\
AZURE_AI_API_KEY=FAKEfoundry0123456789abcdef
AZURE_AI_API_BASE=https://contoso-ai.services.ai.azure.com/models
AZURE_AI_API_VERSION=2025-04-01
"""


def test_azure_ai_api_version_is_imported(db):
    import_env(text=FOUNDRY, dry_run=False, actor="test")
    provider = Provider.objects.get(kind="azure_ai")
    assert provider.api_version == "2025-04-01"
    assert provider.base_url == "https://contoso-ai.services.ai.azure.com/models"
    assert provider.get_api_key() == "FAKEfoundry0123456789abcdef"


def test_azure_ai_without_api_version_gets_the_sdks_when_called(db):
    import_env(
        text=FOUNDRY.replace("AZURE_AI_API_VERSION=2025-04-01\n", ""), dry_run=False, actor="test"
    )
    provider = Provider.objects.get(kind="azure_ai")
    assert provider.api_version == ""
    params = provider.kind_info.litellm_params(
        model="DeepSeek-R1",
        base_url=provider.base_url,
        api_key="k",
        api_version=provider.api_version,
        headers={},
        timeout=5,
        max_retries=0,
    )
    assert params["api_version"] == "2024-05-01-preview"
