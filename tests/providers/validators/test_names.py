"""Model IDs and provider names."""

import pytest

from providers import validators as v
from tests.providers.validators.conftest import error

# --- Model IDs. ---


@pytest.mark.parametrize(
    "model_id",
    [
        "gpt-4o-mini",
        "llama3.1:8b",
        "meta-llama/Llama-3.1-8B-Instruct",
        "claude-3-5-sonnet-20241022",
        "4o",
        "accounts/fireworks/models/qwen2p5-72b",
        "a" * v.MAX_MODEL_ID_LENGTH,
    ],
)
def test_valid_model_ids_are_accepted(model_id):
    assert v.validate_model_id(model_id) == model_id


@pytest.mark.parametrize(
    "model_id",
    [
        "gpt 4o",
        "gpt-4o\n",
        " gpt-4o",
        "gpt-4o\x00",
        "gpt\u200b4o",
        "-gpt-4o",
        ".hidden",
        "/etc/passwd",
        "gpt-4o?x=1",
        "gpt-4o#x",
        "modèle",
        "gpt;rm",
    ],
)
def test_model_id_with_invalid_characters_is_rejected(model_id):
    err = error(v.validate_model_id, model_id)

    assert err.message == v.MODEL_ID_INVALID
    assert err.code == "model_id_invalid"


@pytest.mark.parametrize("model_id", ["models/../admin", "a..b", "llama3..1"])
def test_model_id_with_dot_dot_is_rejected(model_id):
    assert error(v.validate_model_id, model_id).message == v.MODEL_ID_DOTDOT


def test_overlong_model_id_is_rejected():
    err = error(v.validate_model_id, "a" * (v.MAX_MODEL_ID_LENGTH + 1))

    assert err.message == v.MODEL_ID_TOO_LONG
    assert "200" in err.messages[0]


def test_empty_model_id_is_rejected():
    assert error(v.validate_model_id, "").message == v.MODEL_ID_REQUIRED


# --- Provider names. ---


@pytest.mark.parametrize(
    "name", ["openai-prod", "a", "0", "local_ollama", "team-2", "a" * v.MAX_PROVIDER_NAME_LENGTH]
)
def test_valid_provider_names_are_accepted(name):
    assert v.validate_provider_name(name) == name


@pytest.mark.parametrize(
    "name", ["OpenAI", "-prod", "_prod", "open ai", "open.ai", "ümlaut", "prod\n", "a/b"]
)
def test_invalid_provider_name_is_rejected_with_example(name):
    err = error(v.validate_provider_name, name)

    assert err.message == v.PROVIDER_NAME_INVALID
    assert "openai-prod" in err.messages[0]


def test_overlong_provider_name_is_rejected():
    name = "a" * (v.MAX_PROVIDER_NAME_LENGTH + 1)

    assert error(v.validate_provider_name, name).message == v.PROVIDER_NAME_TOO_LONG


def test_empty_provider_name_is_rejected():
    assert error(v.validate_provider_name, "").message == v.PROVIDER_NAME_REQUIRED
