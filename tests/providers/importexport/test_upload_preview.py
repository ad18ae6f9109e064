"""Preview, then confirm, on both import pages (providers/views/upload_preview.py): the
upload waits on the server, never in the page (not even encrypted), and confirms once."""

import json
import re
import time
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from providers import crypto, services
from providers.models import AuditEvent, Provider
from providers.views import config as config_view
from providers.views import env_import as env_view
from providers.views import upload_preview
from tests.conftest import SECRET

CONFIG = (
    "model_list:\n"
    "  - model_name: fast\n"
    "    litellm_params: {model: groq/llama-3.3-70b-versatile, api_key: os.environ/GROQ_KEY}\n"
)
ENV = f"GROQ_KEY={SECRET}\n"


def _preview_config(client):
    data = {"config": SimpleUploadedFile("config.yaml", CONFIG.encode()), "environment": ENV}
    return client.post(reverse("config_import"), data)


def _preview_env(client):
    return client.post(reverse("env_import"), {"text": f"GROQ_API_KEY={SECRET}\n"})


PAGES = {
    "config_import": (_preview_config, config_view.PREVIEW_EXPIRED),
    "env_import": (_preview_env, env_view.PREVIEW_EXPIRED),
}


def _hidden_inputs(html: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return dict(found)


@pytest.fixture
def editor(client, login_as):
    login_as("editor")
    return client


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_page_never_holds_the_upload_not_even_encrypted(editor, page):
    preview, _ = PAGES[page]
    response = preview(editor)
    html = response.content.decode()
    sealed = editor.session[upload_preview._SESSION_PREFIX + page]
    assert crypto.decrypt(sealed)  # the upload is kept, encrypted, in the session...
    assert SECRET not in html and sealed not in html  # ...and is not in the page
    assert "gAAAAA" not in html  # no Fernet token of any kind
    hidden = _hidden_inputs(html)
    assert set(hidden) == {"csrfmiddlewaretoken", upload_preview.FIELD}
    assert hidden[upload_preview.FIELD] == response.context["preview"]
    assert len(hidden[upload_preview.FIELD]) <= 32


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_confirmation_works_once_only(editor, page):
    preview, expired = PAGES[page]
    preview_id = preview(editor).context["preview"]
    first = editor.post(reverse(page), {"preview": preview_id}, follow=True)
    assert first.status_code == 200 and Provider.objects.get().get_api_key() == SECRET
    # Changed since: applying the upload again would put its key back.
    services.provider_update(provider=Provider.objects.get(), api_key="sk-other-key-0123456789")
    events = AuditEvent.objects.count()

    again = editor.post(reverse(page), {"preview": preview_id}, follow=True)
    assert expired in again.content.decode()
    assert Provider.objects.get().get_api_key() == "sk-other-key-0123456789"
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_new_preview_replaces_the_one_before(editor, page):
    preview, expired = PAGES[page]
    old = preview(editor).context["preview"]
    preview(editor)
    response = editor.post(reverse(page), {"preview": old}, follow=True)
    assert expired in response.content.decode()
    assert not Provider.objects.exists()


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_preview_expires(editor, page, monkeypatch):
    preview, expired = PAGES[page]
    preview_id = preview(editor).context["preview"]
    later = time.time() + upload_preview.PREVIEW_MAX_AGE + 1
    monkeypatch.setattr(upload_preview, "time", SimpleNamespace(time=lambda: later))
    response = editor.post(reverse(page), {"preview": preview_id}, follow=True)
    assert expired in response.content.decode()
    assert not Provider.objects.exists()


def test_the_old_hidden_field_path_is_gone(editor, login_as):
    """The page used to carry the encrypted upload in a hidden "token" and accept it back;
    such a token (here made exactly as it was) imports nothing now."""
    user = login_as("editor", username="mallory")
    old_token = crypto.encrypt(
        json.dumps(
            {
                "user": user.pk,
                "at": time.time(),
                "data": {"model_list": [{"model_name": "fast", "litellm_params": {
                    "model": "groq/llama-3.3-70b-versatile", "api_key": SECRET}}]},
                "env": {},
            }
        )
    )  # fmt: skip
    response = editor.post(reverse("config_import"), {"token": old_token})
    assert response.status_code == 200
    assert response.context["form"].errors  # an empty upload form, nothing applied
    assert not Provider.objects.exists()
    assert 'name="token"' not in _preview_config(editor).content.decode()
