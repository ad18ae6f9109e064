"""mozilla-django-oidc, completed: the authorization code flow with PKCE (S256), state and
nonce come from the library; this module adds what it lacks (discovery, the ID token's iss
and aud, a small clock-skew leeway, matching by (issuer, sub) rather than e-mail), maps IdP
groups to roles on every sign-in, and turns every refusal into our own 403 page, audited and
counted by the login throttle.

The library's views and backend read their settings through a static `get_settings`, and
are built anew for every request; ours answer the OIDC_* names from accounts.sso.config()
and the issuer's cached discovery document.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import jwt
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.encoding import smart_str
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from . import sso
from .throttle import LoginAttempt, client_ip

logger = logging.getLogger(__name__)

SIGN_IN_UNVERIFIED = "The sign-in could not be verified ({detail}). Start again."
STATE_UNKNOWN = (
    "this sign-in was not started here, or was already used (unknown state): start it from "
    "the login page"
)
IDP_UNREACHABLE = "The identity provider did not answer ({detail}). Try again in a moment."
IDP_ERROR = "The identity provider refused the sign-in ({error})."
WRONG_CALLBACK_ISSUER = "the answer came from another issuer"
SSO_OFF = "Single sign-on is not configured on this server."
FAILED = "The sign-in failed. Start again."
ACCOUNT_INACTIVE = "Your account here is deactivated; ask an admin."

_DENIED_TEMPLATE = "accounts/sso_denied.html"


def _settings_for(attr: str, *args):
    """OIDC_* settings, from our configuration; anything else from django.conf.settings."""
    cfg = sso.config()
    if cfg is None:
        raise ImproperlyConfigured(SSO_OFF)
    fixed = {
        "OIDC_RP_CLIENT_ID": cfg.client_id,
        "OIDC_RP_CLIENT_SECRET": cfg.client_secret,
        "OIDC_RP_SCOPES": cfg.scopes,
        "OIDC_RP_SIGN_ALGO": "RS256",
        "OIDC_RP_IDP_SIGN_KEY": None,
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_USE_NONCE": True,
        "OIDC_TIMEOUT": sso.IDP_TIMEOUT,
        "OIDC_VERIFY_SSL": True,
        "OIDC_CREATE_USER": True,
        "OIDC_STORE_ACCESS_TOKEN": False,
        "OIDC_STORE_ID_TOKEN": False,
        "OIDC_AUTHENTICATION_CALLBACK_URL": "oidc_authentication_callback",
    }
    if attr in fixed:
        return fixed[attr]
    endpoints = {
        "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
        "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
        "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
        "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    }
    if attr in endpoints:
        return sso.discovery(cfg.issuer).get(endpoints[attr])
    return getattr(settings, attr, *args) if args else getattr(settings, attr)


class Refused(Exception):
    """A sign-in refused for a reason the person may read (and the audit log records)."""

    def __init__(self, reason: str, *, status: int = 403, sub: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.sub = reason, status, sub


class RoutingOIDCBackend(OIDCAuthenticationBackend):
    """Only ever answers the callback view (which passes `nonce`): a password login never
    reaches the IdP, and with SSO off this backend is inert."""

    get_settings = staticmethod(_settings_for)

    def __init__(self, *args, **kwargs) -> None:
        # The library reads every endpoint here; ours wait until a callback needs them.
        from django.contrib.auth import get_user_model

        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if request is None or "nonce" not in kwargs or not sso.enabled():
            return None
        self.cfg = sso.config()
        super().__init__()  # now the endpoints, from discovery
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id):
        # A session from single sign-on ends once SSO is turned off or the account is
        # deactivated (the library's get_user checks neither).
        if not sso.enabled():
            return None
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def retrieve_matching_jwk(self, token: str) -> jwt.PyJWK:
        # Fetched on every sign-in, so keys the issuer rotates are picked up at once.
        header = jwt.get_unverified_header(token)
        response = requests.get(self.OIDC_OP_JWKS_ENDPOINT, timeout=sso.IDP_TIMEOUT)
        response.raise_for_status()
        keys = [
            k
            for k in response.json().get("keys", [])
            if k.get("kid") == smart_str(header.get("kid"))
            and k.get("alg", header["alg"]) == header["alg"]
            and k.get("use", "sig") == "sig"
        ]
        if len(keys) != 1:
            raise SuspiciousOperation("the ID token is signed with a key the issuer does not list")
        return jwt.PyJWK(keys[0])

    def verify_token(self, token: str, **kwargs) -> dict:
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"ID token unreadable: {exc}") from exc
        if alg not in sso.SIGN_ALGORITHMS:
            raise SuspiciousOperation(f"ID token signed with {alg!r}")
        key = self.retrieve_matching_jwk(token)
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.cfg.client_id,
                issuer=self.cfg.issuer,
                leeway=sso.CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"ID token rejected: {exc}") from exc
        aud = payload["aud"]
        if isinstance(aud, list) and len(aud) > 1 and payload.get("azp") != self.cfg.client_id:
            raise SuspiciousOperation("ID token rejected: azp is not this client")
        nonce = kwargs.get("nonce")
        if not nonce or not constant_time_compare(str(payload.get("nonce") or ""), nonce):
            raise SuspiciousOperation("ID token rejected: nonce mismatch")
        self.request.oidc_id_claims = payload
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        info = {}
        if self.OIDC_OP_USER_ENDPOINT:
            info = super().get_userinfo(access_token, id_token, payload)
            if info.get("sub") != payload["sub"]:  # OpenID Connect Core 5.3.2
                raise SuspiciousOperation("userinfo is about someone else")
        # The signed ID token wins; Entra ID puts groups only there.
        return {**info, **payload}

    def verify_claims(self, claims) -> bool:
        return bool(claims.get("sub"))

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        user, role, teams = sso.sso_user_sync(cfg=self.cfg, claims=claims)
        # The one rule of who gets in: the IdP gives a role or a team (one that exists).
        # Memberships added by hand stay, but alone they do not let an SSO account in.
        if role is None and not teams:
            # The role and the IdP's teams are already gone (committed); now it is refused.
            raise Refused(sso.NO_MAPPED_GROUP.format(name=self.cfg.name), sub=claims["sub"])
        self.request.oidc_role, self.request.oidc_teams = role, teams
        return user


def _denied(request: HttpRequest, reason: str, status: int = 403) -> HttpResponse:
    return render(request, _DENIED_TEMPLATE, {"reason": reason}, status=status)


class SignInView(OIDCAuthenticationRequestView):
    """GET /oidc/authenticate/: to the IdP's login, with state, nonce and a PKCE challenge."""

    get_settings = staticmethod(_settings_for)

    def __init__(self, *args, **kwargs) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        try:
            cfg = sso.config()
        except sso.ConfigError:
            cfg = None
        if cfg is None:
            raise Http404(SSO_OFF)
        try:
            self.OIDC_OP_AUTH_ENDPOINT = sso.discovery(cfg.issuer)["authorization_endpoint"]
        except sso.DiscoveryError as exc:
            sso.audit_failure(cfg=cfg, reason=str(exc), sub=None, address=client_ip(request))
            return _denied(request, str(exc), status=502)
        self.OIDC_RP_CLIENT_ID = cfg.client_id
        return super().get(request)


class CallbackView(OIDCAuthenticationCallbackView):
    """GET /oidc/callback/: the IdP sends the person back here with a code. Counted by the
    login throttle per address; every outcome is audited."""

    get_settings = staticmethod(_settings_for)

    def get(self, request):
        try:
            cfg = sso.config()
        except sso.ConfigError:
            cfg = None
        if cfg is None:
            raise Http404(SSO_OFF)
        address = client_ip(request)
        attempt = LoginAttempt(None, address)
        if attempt.refusal:
            return _denied(request, attempt.refusal, status=429)
        try:
            response = self._checked(request, cfg)
        except Refused as exc:
            sso.audit_failure(cfg=cfg, reason=exc.reason, sub=exc.sub, address=address)
            return _denied(request, exc.reason, status=exc.status)
        attempt.succeeded()
        return response

    def _checked(self, request, cfg: sso.SsoConfig) -> HttpResponse:
        if request.GET.get("error"):
            # The state is used up either way, so that the answer cannot be replayed.
            request.session.get("oidc_states", {}).pop(request.GET.get("state"), None)
            request.session.modified = True
            raise Refused(IDP_ERROR.format(error=request.GET["error"][:100]))
        callback_iss = request.GET.get("iss")  # RFC 9207, when the IdP sends it
        if callback_iss is not None and callback_iss != cfg.issuer:
            raise Refused(SIGN_IN_UNVERIFIED.format(detail=WRONG_CALLBACK_ISSUER))
        if "oidc_states" not in request.session or "code" not in request.GET:
            raise Refused(SIGN_IN_UNVERIFIED.format(detail=STATE_UNKNOWN))
        try:
            return super().get(request)
        except Refused:
            raise
        except SuspiciousOperation as exc:
            detail = str(exc)
            if "state not found" in detail:
                detail = STATE_UNKNOWN
            raise Refused(SIGN_IN_UNVERIFIED.format(detail=detail)) from None
        except sso.DiscoveryError as exc:
            raise Refused(str(exc), status=502) from None
        except requests.RequestException as exc:
            logger.warning("SSO: the identity provider failed: %s", type(exc).__name__)
            status = getattr(getattr(exc, "response", None), "status_code", None)
            detail = f"HTTP {status}" if status else type(exc).__name__
            raise Refused(IDP_UNREACHABLE.format(detail=detail), status=502) from None

    def login_failure(self):
        user = getattr(self, "user", None)
        raise Refused(ACCOUNT_INACTIVE if user is not None and not user.is_active else FAILED)

    def login_success(self):
        response = super().login_success()  # auth.login (a new session key), then the redirect
        cfg = sso.config()
        claims = self.request.oidc_id_claims
        expires = datetime.fromtimestamp(claims["exp"], tz=UTC)
        if cfg.max_session_seconds:
            expires = min(expires, timezone.now() + timedelta(seconds=cfg.max_session_seconds))
        self.request.session.set_expiry(expires)
        sso.audit_sign_in(
            cfg=cfg,
            user=self.user,
            role=self.request.oidc_role,
            teams=self.request.oidc_teams,
            expires=expires.isoformat(),
        )
        return response
