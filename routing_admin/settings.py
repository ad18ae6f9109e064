"""Settings for Routing Admin: one file, driven by the environment.

A `.env` file at the project root is read with python-dotenv, but never overrides a real
environment variable. Settings never invent a secret: the run command (`bin/run`) is the
only thing that generates keys, and only into a local `.env`.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from providers.crypto import KeyConfigError, parse_keys

BASE_DIR = Path(__file__).resolve().parent.parent

load_dotenv(BASE_DIR / ".env", override=False)


def _env(name: str, default: str = "") -> str:
    # An empty value counts as missing, so `SECRET_KEY=` in a .env is not a key.
    return os.environ.get(name, "").strip() or default


def _env_bool(name: str, default: bool = False) -> bool:
    value = _env(name)
    if not value:
        return default
    return value.lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in _env(name, default).split(",") if part.strip()]


SECRET_KEY = _env("SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set it in the environment or in .env to a long random "
        'string, e.g. python -c "import secrets; print(secrets.token_urlsafe(50))" '
        "(the run command `bin/run` writes one to .env for you on first start)."
    )

try:
    ROUTING_ENCRYPTION_KEYS = parse_keys(os.environ.get("ROUTING_ENCRYPTION_KEYS"))
except KeyConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from None

DEBUG = _env_bool("DEBUG")
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")

# Private hosts that providers may live on (host names, IPs or CIDR networks); http:// is
# allowed for them. Link-local and cloud-metadata addresses stay forbidden regardless.
ROUTING_ALLOWED_PRIVATE_HOSTS = _env_list("ROUTING_ALLOWED_PRIVATE_HOSTS")
# Safety net for live switching: how often a process re-reads the configuration version even
# when no change notification arrived.
ROUTING_CONFIG_RECHECK_SECONDS = float(_env("ROUTING_CONFIG_RECHECK_SECONDS", "5"))

# How long request-log records are kept (`routing prune-requests` deletes older ones).
ROUTING_REQUEST_LOG_RETENTION_DAYS = float(_env("ROUTING_REQUEST_LOG_RETENTION_DAYS", "30"))

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "providers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "routing_admin.urls"
WSGI_APPLICATION = "routing_admin.wsgi.application"
ASGI_APPLICATION = "routing_admin.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "providers.roles.context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        _env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the dashboard read while a gateway worker writes; IMMEDIATE avoids
        # "database is locked" on read-then-write transactions.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": _env("LOG_LEVEL", "INFO")},
    "loggers": {
        # LiteLLM logs request details at DEBUG, headers included; keep it quiet.
        "LiteLLM": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}
