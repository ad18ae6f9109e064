"""Extra headers: names that are HTTP tokens, values without line breaks, never echoed."""

import pytest

from providers import validators as v
from tests.providers.validators.conftest import error

# --- Headers. ---

HEADER_SECRET = "sk-live-Zq8VtR2mXk"


def test_valid_header_is_returned_stripped():
    assert v.validate_header("  X-Org-Id ", f" {HEADER_SECRET}\t") == ("X-Org-Id", HEADER_SECRET)


def test_header_value_may_contain_inner_tab_and_spaces():
    assert v.validate_header("X-Note", "a b\tc") == ("X-Note", "a b\tc")


@pytest.mark.parametrize("name", ["X Org", "X-Org:", "X-Ørg", "X-Org\r\nHost", "(comment)", "a/b"])
def test_header_name_must_be_a_token(name):
    assert error(v.validate_header, name, "x").message == v.HEADER_NAME_INVALID


def test_empty_header_name_is_rejected():
    assert error(v.validate_header, "  ", "x").message == v.HEADER_NAME_REQUIRED


def test_invalid_header_name_is_not_echoed():
    # People paste a whole "Name: value" line into the name field.
    err = error(v.validate_header, f"Authorization: Bearer {HEADER_SECRET}", "")

    assert HEADER_SECRET not in err.messages[0]


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "host",
        "Content-Length",
        "Transfer-Encoding",
        "CONNECTION",
        "Keep-Alive",
        "Upgrade",
        "TE",
        "Trailer",
        "Proxy-Authorization",
    ],
)
def test_hop_by_hop_and_framing_headers_are_refused(name):
    err = error(v.validate_header, name, "x")

    assert err.message == v.HEADER_NAME_FORBIDDEN
    assert f"The {name} header" in err.messages[0]


@pytest.mark.parametrize(
    "value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b", "a\x1bb", "a\x7fb", "a\u2028b"]
)
def test_header_value_with_line_break_or_control_character_is_rejected(value):
    assert error(v.validate_header, "X-Key", value).message == v.HEADER_VALUE_INVALID


def test_header_value_with_non_ascii_is_rejected():
    assert error(v.validate_header, "X-Key", "clé").message == v.HEADER_VALUE_NOT_ASCII


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Host", HEADER_SECRET),
        ("X-Key", f"{HEADER_SECRET}\r\nX-Evil: 1"),
        ("X-Key", f"{HEADER_SECRET}\x00"),
        ("X-Key", f"{HEADER_SECRET}é"),
        ("X Key", HEADER_SECRET),
        ("", HEADER_SECRET),
    ],
)
def test_header_value_never_in_error_message(name, value):
    err = error(v.validate_header, name, value)

    assert HEADER_SECRET not in " ".join(err.messages)
    assert HEADER_SECRET not in repr(err)
