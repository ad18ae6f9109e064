"""Production defaults and the system checks that refuse development keys and hosts.

The settings module is read from the environment, so each case runs `manage.py` in a process
of its own with a controlled environment. Every variable the settings read is set, empty when
unused: an empty value counts as missing, and it stops python-dotenv from filling it from a
developer's local .env.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from dotenv import dotenv_values

from providers.checks import CORS_ORIGIN_BAD, STARTUP_FAILURE, dev_key_id
from routing_admin.__main__ import ensure_env_file

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = secrets.token_urlsafe(50)
KEY = Fernet.generate_key().decode()
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": SECRET_KEY,
    "ALLOWED_HOSTS": "admin.example.com",
    "ROUTING_ENCRYPTION_KEYS": KEY,
}
READ_BY_SETTINGS = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "ROUTING_ENCRYPTION_KEYS",
    "ROUTING_HTTPS_REDIRECT",
    "ROUTING_PROXY_SSL_HEADER",
    "ROUTING_HSTS_SECONDS",
    "ROUTING_TRUSTED_PROXIES",
    "ROUTING_DEV_KEY_IDS",
    "LOG_LEVEL",
)
DUMP = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({n: getattr(s, n) for n in ("
    "'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
    "'SESSION_COOKIE_HTTPONLY', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', "
    "'X_FRAME_OPTIONS', 'SECURE_CONTENT_TYPE_NOSNIFF', 'SECURE_PROXY_SSL_HEADER', "
    "'SECURE_CSP', 'MIDDLEWARE', 'ALLOWED_HOSTS')}))"
)


def _environment(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTING_", "DJANGO_"))}
    return {
        **base,
        **dict.fromkeys(READ_BY_SETTINGS, ""),
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        **env,
    }


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=_environment(env, tmp_path),
        timeout=120,
        cwd=ROOT,
    )


def _deploy_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **env)


def _settings(tmp_path: Path, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", DUMP],
        capture_output=True,
        text=True,
        env=_environment(env, tmp_path),
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _ids(messages) -> set[str]:
    return {message.id for message in messages}


@pytest.fixture
def bin_run_env(tmp_path, monkeypatch) -> dict[str, str]:
    """What `bin/run` writes into a fresh .env."""
    for name in ("SECRET_KEY", "ROUTING_ENCRYPTION_KEYS", "ROUTING_HTTPS_REDIRECT"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    ensure_env_file(env_file)
    assert (env_file.stat().st_mode & 0o777) == 0o600
    return dict(dotenv_values(env_file))


# --- production defaults ------------------------------------------------------------------


def test_deploy_check_is_clean_with_only_the_four_production_settings(tmp_path):
    result = _deploy_check(tmp_path, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_defaults_force_https_secure_cookies_hsts_and_no_framing(tmp_path):
    s = _settings(tmp_path, **PRODUCTION)
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SESSION_COOKIE_SECURE"] is True and s["CSRF_COOKIE_SECURE"] is True
    assert s["SESSION_COOKIE_HTTPONLY"] is True
    assert s["SECURE_HSTS_SECONDS"] >= 31536000 and s["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert s["X_FRAME_OPTIONS"] == "DENY" and s["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert "django.middleware.csp.ContentSecurityPolicyMiddleware" in s["MIDDLEWARE"]
    policy = json.dumps(s["SECURE_CSP"])
    assert "unsafe-eval" not in policy and "unsafe-inline" not in policy
    assert s["SECURE_CSP"]["frame-ancestors"] == ["'none'"]


def test_https_redirect_off_behind_a_tls_proxy_keeps_cookies_secure(tmp_path):
    env = {
        **PRODUCTION,
        "ROUTING_HTTPS_REDIRECT": "0",
        "ROUTING_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    }
    s = _settings(tmp_path, **env)
    assert s["SECURE_SSL_REDIRECT"] is False
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["SESSION_COOKIE_SECURE"] is True and s["CSRF_COOKIE_SECURE"] is True
    result = _deploy_check(tmp_path, **env)
    assert result.returncode == 0, result.stderr


def test_plain_http_with_a_public_host_name_fails_the_check(tmp_path):
    result = _manage(tmp_path, "check", **PRODUCTION, ROUTING_HTTPS_REDIRECT="0")
    assert result.returncode != 0
    assert "routing.E004" in result.stderr and "admin.example.com" in result.stderr


def test_production_without_allowed_hosts_guesses_none_and_fails_the_check(tmp_path):
    env = {**PRODUCTION, "ALLOWED_HOSTS": ""}
    assert _settings(tmp_path, **env)["ALLOWED_HOSTS"] == []
    result = _manage(tmp_path, "check", **env)
    assert result.returncode != 0 and "routing.E003" in result.stderr


# --- the server entry points run the checks too -------------------------------------------


def _import(tmp_path: Path, module: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=_environment(env, tmp_path),
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.parametrize("module", ["routing_admin.asgi", "routing_admin.wsgi"])
def test_server_entry_point_refuses_to_start_on_a_development_secret_key(tmp_path, module):
    dev_key = "dev-only-" + secrets.token_urlsafe(50)
    result = _import(tmp_path, module, **{**PRODUCTION, "SECRET_KEY": dev_key})
    assert result.returncode == STARTUP_FAILURE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("Routing Admin refuses to start: SECRET_KEY is a development key")
    assert "(routing.E001)" in lines[0] and dev_key not in result.stderr


@pytest.mark.parametrize("module", ["routing_admin.asgi", "routing_admin.wsgi"])
def test_server_entry_point_starts_despite_deploy_only_warnings(tmp_path, module):
    # HSTS off is security.W004, which only `check --deploy` reports: not a reason to refuse.
    result = _import(tmp_path, module, **{**PRODUCTION, "ROUTING_HSTS_SECONDS": "0"})
    assert result.returncode == 0, result.stderr
    assert "refuses to start" not in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_uvicorn_refuses_to_serve_plain_http_to_the_network(tmp_path, workers):
    # Several workers import the app inside their event loop: the checks must run there too.
    env = {**PRODUCTION, "ROUTING_HTTPS_REDIRECT": "0"}  # no TLS proxy named: routing.E004
    command = ["-m", "uvicorn", "routing_admin.asgi:application", "--port", "0"]
    command += ["--workers", workers]
    result = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        env=_environment(env, tmp_path),
        timeout=120,  # without the check it would serve until killed
        cwd=ROOT,
    )
    if workers == "1":  # with several, uvicorn's parent stops, and exits 0
        assert result.returncode == STARTUP_FAILURE, result.stderr
    assert "Routing Admin refuses to start" in result.stderr and "routing.E004" in result.stderr
    assert "SynchronousOnlyOperation" not in result.stderr


# --- development keys ---------------------------------------------------------------------


def test_secret_key_generated_by_bin_run_fails_the_check_with_debug_off(tmp_path, bin_run_env):
    generated = bin_run_env
    result = _manage(tmp_path, "check", **{**PRODUCTION, "SECRET_KEY": generated["SECRET_KEY"]})
    assert result.returncode != 0
    assert "routing.E001" in result.stderr
    assert generated["SECRET_KEY"] not in result.stderr + result.stdout


def test_encryption_key_generated_by_bin_run_fails_the_check_with_debug_off(tmp_path, bin_run_env):
    generated = bin_run_env
    env = {
        **PRODUCTION,
        "ROUTING_ENCRYPTION_KEYS": generated["ROUTING_ENCRYPTION_KEYS"],
        "ROUTING_DEV_KEY_IDS": generated["ROUTING_DEV_KEY_IDS"],
    }
    result = _manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert "routing.E002" in result.stderr
    assert generated["ROUTING_ENCRYPTION_KEYS"] not in result.stderr + result.stdout


def test_bin_run_environment_works_on_loopback_but_deploy_check_refuses_its_keys(
    tmp_path, bin_run_env
):
    generated = bin_run_env
    assert generated["ROUTING_HTTPS_REDIRECT"] == "0"
    assert generated["ROUTING_DEV_KEY_IDS"] == dev_key_id(generated["ROUTING_ENCRYPTION_KEYS"])
    local = _manage(tmp_path, "check", **generated)
    assert local.returncode == 0, local.stderr
    deploy = _deploy_check(tmp_path, **generated)
    assert deploy.returncode != 0
    assert "routing.E001" in deploy.stderr and "routing.E002" in deploy.stderr


def test_tests_only_secret_key_fails_the_checks_with_debug_off(settings):
    settings.ROUTING_PLAIN_HTTP = False
    settings.ALLOWED_HOSTS = ["admin.example.com"]
    assert settings.SECRET_KEY.startswith("tests-only-")
    assert "routing.E001" in _ids(run_checks(tags=["security"]))
    settings.SECRET_KEY = SECRET_KEY
    assert "routing.E001" not in _ids(run_checks(tags=["security"]))


def test_djangos_insecure_startproject_key_fails_the_check(settings):
    settings.ROUTING_PLAIN_HTTP = False
    settings.ALLOWED_HOSTS = ["admin.example.com"]
    settings.SECRET_KEY = "django-insecure-" + SECRET_KEY
    assert "routing.E001" in _ids(run_checks(tags=["security"]))


def test_dev_encryption_key_kept_only_for_decryption_does_not_block_rotation(settings):
    # Moving off a bin/run key: the new key is first, the old one stays until rotate-key.
    settings.ROUTING_PLAIN_HTTP = False
    settings.ALLOWED_HOSTS = ["admin.example.com"]
    settings.SECRET_KEY = SECRET_KEY
    old = settings.ROUTING_ENCRYPTION_KEYS[0]
    settings.ROUTING_DEV_KEY_IDS = [dev_key_id(old)]
    assert "routing.E002" in _ids(run_checks(tags=["security"]))
    settings.ROUTING_ENCRYPTION_KEYS = (Fernet.generate_key().decode(), old)
    assert "routing.E002" not in _ids(run_checks(tags=["security"]))


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "proxy.example.com", "1.2.3.4; 5.6.7.8"])
def test_malformed_trusted_proxy_entry_fails_the_check(settings, entry):
    settings.ROUTING_TRUSTED_PROXIES = ["10.0.0.1", entry]
    assert "routing.E005" in _ids(run_checks(tags=["security"]))


@pytest.mark.parametrize("debug", [False, True])
def test_secret_key_equal_to_an_encryption_key_fails_the_check(settings, debug):
    settings.DEBUG = debug
    settings.SECRET_KEY = SECRET_KEY
    assert "routing.E006" not in _ids(run_checks(tags=["security"]))
    old = Fernet.generate_key().decode()
    settings.ROUTING_ENCRYPTION_KEYS = (KEY, old)
    for reused in (KEY, old, f" {old}\n"):
        settings.SECRET_KEY = reused
        assert "routing.E006" in _ids(run_checks(tags=["security"])), reused[:4]


def test_server_entry_point_refuses_a_secret_key_that_is_the_encryption_key(tmp_path):
    result = _import(tmp_path, "routing_admin.asgi", **{**PRODUCTION, "SECRET_KEY": KEY})
    assert result.returncode == STARTUP_FAILURE and "routing.E006" in result.stderr
    assert KEY not in result.stderr


@pytest.mark.parametrize(
    "entry",
    [
        "app.example.com",
        "*",
        "https://*.example.com",
        "https://app.example.com/app",
        "https://app.example.com?x=1",
        "ftp://app.example.com",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "https://",
    ],
)
def test_a_malformed_cors_origin_fails_the_check(settings, entry):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com", entry]
    errors = [e for e in run_checks(tags=["security"]) if e.id == "routing.E007"]
    assert [e.msg for e in errors] == [CORS_ORIGIN_BAD.msg.format(entry=entry)]


def test_cors_origins_are_read_from_the_variable_and_a_bad_one_is_named_by_it(tmp_path):
    # A trailing slash, as copied from the address bar, is not part of the origin.
    origins = "https://app.example.com/, http://localhost:3000"
    dump = "from django.conf import settings as s; print(s.CORS_ALLOWED_ORIGINS)"
    env = {**PRODUCTION, "DEBUG": "1"}
    result = _manage(tmp_path, "shell", "-c", dump, ROUTING_CORS_ALLOWED_ORIGINS=origins, **env)
    read = result.stdout.strip().splitlines()[-1]
    assert read == "['https://app.example.com', 'http://localhost:3000']"
    bad = _manage(tmp_path, "check", ROUTING_CORS_ALLOWED_ORIGINS="app.example.com", **env)
    assert bad.returncode != 0
    assert CORS_ORIGIN_BAD.msg.format(entry="app.example.com") in bad.stderr
    assert "corsheaders" not in bad.stderr


@pytest.mark.parametrize(
    "name, value, what",
    [
        ("ROUTING_REQUEST_LOG_MAX_PENDING", "100k", "a whole number"),
        ("ROUTING_CONFIG_RECHECK_SECONDS", "5s", "a number"),
    ],
)
def test_a_mistyped_number_is_refused_naming_its_variable(tmp_path, name, value, what):
    from routing_admin.settings import NOT_A_NUMBER

    result = _manage(tmp_path, "check", **{**PRODUCTION, "DEBUG": "1", name: value})
    assert result.returncode != 0
    default = {"ROUTING_REQUEST_LOG_MAX_PENDING": "100000"}.get(name, "5")
    message = NOT_A_NUMBER.format(name=name, what=what, default=default, value=value)
    assert message in result.stderr and "invalid literal" not in result.stderr
