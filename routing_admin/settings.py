"""Settings for Routing Admin: one file, driven by the environment.

A `.env` file at the project root is read with python-dotenv, but never overrides a real
environment variable. Settings never invent a secret: the run command (`bin/run`) is the
only thing that generates keys, and only into a local `.env`.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
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


NOT_A_NUMBER = "{name} must be {what}, e.g. {default}; it is {value!r}."


def _env_number(name: str, default: str, kind: type = int) -> int | float:
    # A mistyped number names its variable, instead of a bare "invalid literal" traceback.
    value = _env(name, default)
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        message = NOT_A_NUMBER.format(name=name, what=what, default=default, value=value[:40])
        raise ImproperlyConfigured(message) from None


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

# --- HTTPS and the production defaults ------------------------------------------------------
# Secure unless told otherwise: HTTPS redirect, Secure cookies, HSTS. ROUTING_HTTPS_REDIRECT=0
# turns the redirect off, for two deployments: TLS terminated in front (then also set
# ROUTING_PROXY_SSL_HEADER, and cookies stay Secure), or plain HTTP on loopback only (what
# `bin/run` does; cookies lose the Secure flag, and a system check refuses non-loopback
# ALLOWED_HOSTS). DEBUG=1 defaults to plain HTTP, since it is never production.
ROUTING_HTTPS_REDIRECT = _env_bool("ROUTING_HTTPS_REDIRECT", default=not DEBUG)
_proxy_ssl_header = _env("ROUTING_PROXY_SSL_HEADER")  # e.g. X-Forwarded-Proto
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
ROUTING_PLAIN_HTTP = not ROUTING_HTTPS_REDIRECT and SECURE_PROXY_SSL_HEADER is None
SECURE_SSL_REDIRECT = ROUTING_HTTPS_REDIRECT
# A load balancer's health check may speak plain HTTP to the app; the answer holds no secret.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not ROUTING_PLAIN_HTTP
# Nothing reads the CSRF cookie from JavaScript: htmx sends the token from <body hx-headers>.
CSRF_COOKIE_HTTPONLY = True
# Our own page: Django's has an inline <style>, which the CSP below refuses.
CSRF_FAILURE_VIEW = "providers.views.errors.csrf_failure"
# HSTS is only ever sent on HTTPS responses; 0 turns it off.
SECURE_HSTS_SECONDS = _env_number("ROUTING_HSTS_SECONDS", "31536000")
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
X_FRAME_OPTIONS = "DENY"
# Django's own CSP: no inline script or style and no eval. htmx runs under it because
# base.html turns off its eval and its injected indicator style (the htmx-config meta tag).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SILENCED_SYSTEM_CHECKS = []
if not ROUTING_HTTPS_REDIRECT:
    # A documented choice (TLS in front, or loopback only), not an oversight.
    SILENCED_SYSTEM_CHECKS.append("security.W008")
if ROUTING_PLAIN_HTTP:
    # Secure cookies cannot work over plain HTTP; providers.checks insists on loopback instead.
    SILENCED_SYSTEM_CHECKS += ["security.W012", "security.W016"]

# No default in production: a missing ALLOWED_HOSTS is a system check error, not a guess.
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS") or (
    LOOPBACK_HOSTS if DEBUG or ROUTING_PLAIN_HTTP else []
)

# Proxies whose X-Forwarded-For is believed (IPs or CIDR networks); from anyone else the
# header is ignored and the peer address is the client.
ROUTING_TRUSTED_PROXIES = _env_list("ROUTING_TRUSTED_PROXIES")
# The first-run page that creates the first admin answers only this machine (loopback)
# unless this is set; `createsuperuser` works from anywhere with a shell.
ROUTING_SETUP_FROM_ANY_ADDRESS = _env_bool("ROUTING_SETUP_FROM_ANY_ADDRESS")
# Fingerprints of the encryption keys `bin/run` generated for local use (see providers.checks).
ROUTING_DEV_KEY_IDS = _env_list("ROUTING_DEV_KEY_IDS")

# Login throttling: this many failed logins for one account within the window lock it for
# the lockout time (the right password is refused too); an address gets a larger budget
# across all accounts, against password spraying.
ROUTING_LOGIN_FAILURE_LIMIT = _env_number("ROUTING_LOGIN_FAILURE_LIMIT", "10")
ROUTING_LOGIN_IP_FAILURE_LIMIT = _env_number("ROUTING_LOGIN_IP_FAILURE_LIMIT", "50")
ROUTING_LOGIN_WINDOW_SECONDS = _env_number("ROUTING_LOGIN_WINDOW_SECONDS", "900")
ROUTING_LOGIN_LOCKOUT_SECONDS = _env_number("ROUTING_LOGIN_LOCKOUT_SECONDS", "900")
# Connection tests (and other upstream probes from the dashboard) per person per minute.
ROUTING_TESTS_PER_MINUTE = _env_number("ROUTING_TESTS_PER_MINUTE", "60")

# Single sign-on with OpenID Connect (accounts/sso.py parses these; accounts/checks.py refuses
# bad values at start). SSO is on when ROUTING_OIDC_ISSUER is set. The secret is only ever
# sent to the IdP's token endpoint.
ROUTING_OIDC_ISSUER = _env("ROUTING_OIDC_ISSUER")
ROUTING_OIDC_CLIENT_ID = _env("ROUTING_OIDC_CLIENT_ID")
ROUTING_OIDC_CLIENT_SECRET = _env("ROUTING_OIDC_CLIENT_SECRET")
ROUTING_OIDC_SCOPES = _env("ROUTING_OIDC_SCOPES")
ROUTING_OIDC_GROUPS_CLAIM = _env("ROUTING_OIDC_GROUPS_CLAIM")
ROUTING_OIDC_ROLE_MAP = _env("ROUTING_OIDC_ROLE_MAP")
# IdP groups to team memberships: "idp-group=team:member|admin,...", re-applied at each sign-in.
ROUTING_OIDC_TEAM_MAP = _env("ROUTING_OIDC_TEAM_MAP")
ROUTING_OIDC_NAME = _env("ROUTING_OIDC_NAME")
ROUTING_OIDC_MAX_SESSION_SECONDS = _env("ROUTING_OIDC_MAX_SESSION_SECONDS")
# Local passwords: on (everyone), admins (superusers and admins only: break-glass), off.
ROUTING_LOCAL_LOGIN = _env("ROUTING_LOCAL_LOGIN", "on")
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LocalPasswordBackend",
    "accounts.oidc.RoutingOIDCBackend",
]

# Private hosts that providers may live on (host names, IPs or CIDR networks); http:// is
# allowed for them. Link-local and cloud-metadata addresses stay forbidden regardless.
ROUTING_ALLOWED_PRIVATE_HOSTS = _env_list("ROUTING_ALLOWED_PRIVATE_HOSTS")
# Safety net for live switching: how often a process re-reads the configuration version even
# when no change notification arrived.
ROUTING_CONFIG_RECHECK_SECONDS = _env_number("ROUTING_CONFIG_RECHECK_SECONDS", "5", float)

# Connection tests failing in a row before a provider counts as unhealthy (one success
# makes it healthy again).
ROUTING_HEALTH_FAILURE_THRESHOLD = max(1, _env_number("ROUTING_HEALTH_FAILURE_THRESHOLD", "3"))

# How long request-log records are kept (`routing prune-requests` deletes older ones).
ROUTING_REQUEST_LOG_RETENTION_DAYS = _env_number("ROUTING_REQUEST_LOG_RETENTION_DAYS", "30", float)
# Seconds between the request-log writer's batches (and its retries while the database is
# unreachable).
ROUTING_REQUEST_LOG_INTERVAL_SECONDS = _env_number(
    "ROUTING_REQUEST_LOG_INTERVAL_SECONDS", "1", float
)
# Records a process keeps queued for the writer at most (while the database is slow or
# away); further records are dropped and counted on /healthz (request_log.dropped).
ROUTING_REQUEST_LOG_MAX_PENDING = max(1, _env_number("ROUTING_REQUEST_LOG_MAX_PENDING", "100000"))

# The gateway relays calls to kinds that speak OpenAI's wire format itself, through the
# outbound pool, instead of through LiteLLM (providers/services/relay.py); "0", "false" or
# "off" sends every call through LiteLLM.
ROUTING_GATEWAY_RELAY = _env("ROUTING_GATEWAY_RELAY", "on").lower() not in {
    "0",
    "false",
    "off",
    "no",
}

# Where limits are counted across machines (redis://host:6379/0). Unset: in the database,
# exact on one machine with any number of workers (and across machines on PostgreSQL).
ROUTING_REDIS_URL = _env("ROUTING_REDIS_URL")
# While Redis does not answer: "open" lets limited calls through uncounted, "closed" refuses
# them (429 limits_unavailable). /healthz says degraded either way. The system check
# routing.E030 refuses any other value.
ROUTING_LIMITS_ON_REDIS_FAILURE = _env("ROUTING_LIMITS_ON_REDIS_FAILURE", "open").lower()

# Who may scrape GET /metrics (observability/views.py): scrapers send "Authorization: Bearer
# <ROUTING_METRICS_TOKEN>", or come from ROUTING_METRICS_ALLOWED_IPS (IPs or CIDR networks);
# with both set, a scrape needs both. With neither, /metrics refuses and nothing is counted.
ROUTING_METRICS_TOKEN = _env("ROUTING_METRICS_TOKEN")
ROUTING_METRICS_ALLOWED_IPS = _env_list("ROUTING_METRICS_ALLOWED_IPS")

# Browsers: web pages on these origins (e.g. https://app.example.com) may call the gateway
# (/v1/, and Azure OpenAI's /openai/) with a token; the dashboard is never shared. None by
# default. django-cors-headers.
# A trailing "/" (an address copied from the browser's bar) is not part of an origin. Entries
# are checked by providers/checks.py (routing.E007), which names ROUTING_CORS_ALLOWED_ORIGINS.
CORS_ALLOWED_ORIGINS = [o.rstrip("/") for o in _env_list("ROUTING_CORS_ALLOWED_ORIGINS")]
SILENCED_SYSTEM_CHECKS += ["corsheaders.E013", "corsheaders.E014"]
# The gateway's paths, providers.middleware.GATEWAY_PREFIXES (tests check that they agree).
CORS_URLS_REGEX = r"^/(v1|openai)/"
CORS_ALLOW_CREDENTIALS = False  # bearer tokens, never cookies
CORS_ALLOW_METHODS = ("GET", "POST", "OPTIONS")
# Authorization and Content-Type, the keys' other headers (AzureOpenAI's api-key, Anthropic's
# x-api-key), and what the OpenAI and Anthropic SDKs send from a browser.
CORS_ALLOW_HEADERS = (
    "accept",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "anthropic-version",
    "api-key",
    "authorization",
    "content-type",
    "openai-organization",
    "openai-project",
    "x-api-key",
    "x-stainless-arch",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-timeout",
)
# So that a page can read how long to wait after a 429.
CORS_EXPOSE_HEADERS = (
    "retry-after",
    "x-should-retry",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "corsheaders",
    "providers",
    "gateway",
    "usage",
    "accounts",
    "limits",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything that may answer: preflights and CORS headers, on the gateway's paths only
    # (see above).
    # gateway/fastpath.py calls it in this same order.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # A database outage becomes a 503 page (or OpenAI-shaped JSON on /v1/), not a 500.
    "providers.middleware.DatabaseUnavailableMiddleware",
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
                "accounts.roles.context",
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
        # LiteLLM and the provider SDKs under it log request options at DEBUG, headers
        # included, and httpx logs URLs (Gemini's carries the key) at INFO: whatever LOG_LEVEL
        # says, they stay at WARNING.
        "LiteLLM": {"level": "WARNING"},
        "LiteLLM Router": {"level": "WARNING"},
        "LiteLLM Proxy": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        "anthropic": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Bedrock's signing (the canonical request) and Vertex AI's token requests (the signed
        # assertion and the token, in google-auth's request/response logs) at DEBUG.
        "botocore": {"level": "WARNING"},
        "google.auth": {"level": "WARNING"},
        "google.oauth2": {"level": "WARNING"},
    },
}
