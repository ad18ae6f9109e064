"""Single sign-on with OpenID Connect: the configuration, the issuer's discovery document,
and what a sign-in does to the person's account.

The settings are read from the environment as plain strings (routing_admin/settings.py) and
parsed here, so that a bad value is a system check error naming the variable
(accounts/checks.py) instead of a crash at import. The library glue (mozilla-django-oidc's
backend and views) is in accounts/oidc.py.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction

from providers.addresses import allowed_private_hosts
from providers.services import audit
from providers.validators import validate_team_name

from . import services
from .models import Team, TeamRole
from .roles import ROLES

LOCAL_LOGIN_MODES = ("off", "admins", "on")
DEFAULT_SCOPES = "openid email profile"
DEFAULT_GROUPS_CLAIM = "groups"
DEFAULT_NAME = "SSO"
# Clock skew tolerated on the ID token's exp, iat and nbf.
CLOCK_SKEW_SECONDS = 60
# Connect and read timeouts for every request to the identity provider: a hung IdP must not
# hang a worker (requests has no timeout by default).
IDP_TIMEOUT = (3.05, 10)
DISCOVERY_TTL_SECONDS = 3600
# Signature algorithms accepted on ID tokens; "none" and HS256 (the client secret as the key)
# never are.
SIGN_ALGORITHMS = ("RS256", "ES256")
# Usernames of accounts made by single sign-on: "sso:" and a digest of (issuer, sub). A ":"
# is refused by Django's username validator, which every local way of making a user runs
# (the users page, `routing user add`, createsuperuser), so no local account can take one.
USERNAME_PREFIX = "sso:"

# Errors of the configuration: each names its variable (shown by the system checks).
ISSUER_BAD = (
    "ROUTING_OIDC_ISSUER must be the issuer's URL, https:// (http:// only on loopback or a host "
    "in ROUTING_ALLOWED_PRIVATE_HOSTS), without query or fragment, e.g. "
    "https://sso.example.com/realms/main."
)
CLIENT_ID_MISSING = "ROUTING_OIDC_CLIENT_ID is not set: give the client ID registered at the IdP."
CLIENT_SECRET_MISSING = (
    "ROUTING_OIDC_CLIENT_SECRET is not set: give the client secret registered at the IdP."
)
SCOPES_BAD = "ROUTING_OIDC_SCOPES must be space-separated scopes that include openid."
GROUPS_CLAIM_BAD = "ROUTING_OIDC_GROUPS_CLAIM must be a claim name, e.g. groups or roles."
ROLE_MAP_MISSING = (
    "ROUTING_OIDC_ROLE_MAP is not set (nor ROUTING_OIDC_TEAM_MAP), so nobody could sign in: "
    "map IdP groups to roles, e.g. platform-admins=admin,llm-editors=editor,staff=viewer."
)
ROLE_MAP_BAD = (
    "ROUTING_OIDC_ROLE_MAP entry {entry!r} is not GROUP=ROLE with ROLE one of: "
    + ", ".join(ROLES)
    + "."
)
TEAM_MAP_BAD = (
    "ROUTING_OIDC_TEAM_MAP entry {entry!r} is not GROUP=TEAM:ROLE with TEAM a team's name "
    "(lower-case letters, digits, - and _) and ROLE member or admin, e.g. llm-search=search:member."
)
MAX_SESSION_BAD = "ROUTING_OIDC_MAX_SESSION_SECONDS must be a whole number of seconds, at least 60."
SSO_WITHOUT_ISSUER = (
    "{name} is set but ROUTING_OIDC_ISSUER is not, so single sign-on is off. Set the issuer, "
    "or remove {name}."
)
LOCAL_LOGIN_BAD = "ROUTING_LOCAL_LOGIN must be one of: off, admins, on."
LOCAL_LOGIN_OFF_WITHOUT_SSO = (
    "ROUTING_LOCAL_LOGIN=off but single sign-on is not configured (ROUTING_OIDC_ISSUER), so "
    "nobody could log in."
)

# Why a sign-in is refused (the 403 page and the audit log).
NO_MAPPED_GROUP = (
    "Your account at {name} is in no group that Routing Admin maps to a role or a team, so it "
    "gives you no access. Ask an admin to add you to one of the groups it maps."
)
DISCOVERY_FAILED = "The identity provider's configuration could not be read from {url} ({reason})."
ISSUER_MISMATCH = (
    "The identity provider calls itself {found!r}, not the configured issuer {expected!r} "
    "(ROUTING_OIDC_ISSUER): an unknown issuer is refused."
)


class ConfigError(Exception):
    """The SSO settings are unusable; the message names the variable."""


class DiscoveryError(Exception):
    """The issuer's discovery document could not be fetched or does not fit."""


@dataclass(frozen=True)
class SsoConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    groups_claim: str
    role_map: dict[str, str]
    # (IdP group, team name, team role): a group may give several teams, a team may come
    # from several groups (the higher role wins).
    team_map: tuple[tuple[str, str, str], ...]
    name: str
    max_session_seconds: int | None

    def __repr__(self) -> str:  # never the secret, not even in a traceback's locals
        return f"SsoConfig(issuer={self.issuer!r}, client_id={self.client_id!r}, ...)"


def _issuer_allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.query or parts.fragment or parts.username or parts.password:
        return False
    if parts.scheme == "https":
        return True
    host = parts.hostname.lower()
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return True
    try:
        listed = allowed_private_hosts()
    except ImproperlyConfigured:
        listed = []  # reported by the providers' own check
    for entry in listed:
        if isinstance(entry, str) and entry == host:
            return True
        if ip is not None and not isinstance(entry, str) and ip in entry:
            return True
    return False


def parse_role_map(text: str) -> dict[str, str]:
    """ "platform-admins=admin,llm-editors=editor" to {group: role}. A group name may contain
    "=" (the role is after the last one), not ","."""
    mapping: dict[str, str] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        group, sep, role = entry.rpartition("=")
        group, role = group.strip(), role.strip()
        if not sep or not group or role not in ROLES:
            raise ConfigError(ROLE_MAP_BAD.format(entry=entry))
        mapping[group] = role
    return mapping


def parse_team_map(text: str) -> tuple[tuple[str, str, str], ...]:
    """ "llm-search=search:member,search-leads=search:admin" to ((group, team, role), ...).
    As in the role map, the group is what comes before the last "="."""
    entries: list[tuple[str, str, str]] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        group, sep, value = entry.rpartition("=")
        team, colon, role = value.partition(":")
        group, team, role = group.strip(), team.strip(), role.strip()
        if not sep or not colon or not group or role not in TeamRole.values:
            raise ConfigError(TEAM_MAP_BAD.format(entry=entry))
        try:
            validate_team_name(team)
        except ValidationError:
            raise ConfigError(TEAM_MAP_BAD.format(entry=entry)) from None
        entries.append((group, team, role))
    return tuple(entries)


def config() -> SsoConfig | None:
    """The SSO configuration, or None while ROUTING_OIDC_ISSUER is unset (SSO off).
    Raises ConfigError on a bad value."""
    issuer = getattr(settings, "ROUTING_OIDC_ISSUER", "")
    if not issuer:
        return None
    if not _issuer_allowed(issuer):
        raise ConfigError(ISSUER_BAD)
    client_id = settings.ROUTING_OIDC_CLIENT_ID
    if not client_id:
        raise ConfigError(CLIENT_ID_MISSING)
    if not settings.ROUTING_OIDC_CLIENT_SECRET:
        raise ConfigError(CLIENT_SECRET_MISSING)
    scopes = " ".join((settings.ROUTING_OIDC_SCOPES or DEFAULT_SCOPES).split())
    if "openid" not in scopes.split():
        raise ConfigError(SCOPES_BAD)
    claim = settings.ROUTING_OIDC_GROUPS_CLAIM or DEFAULT_GROUPS_CLAIM
    if any(c.isspace() for c in claim):
        raise ConfigError(GROUPS_CLAIM_BAD)
    role_map = parse_role_map(settings.ROUTING_OIDC_ROLE_MAP or "")
    team_map = parse_team_map(getattr(settings, "ROUTING_OIDC_TEAM_MAP", "") or "")
    # Teams alone are enough: global admins may keep local passwords (ROUTING_LOCAL_LOGIN).
    if not role_map and not team_map:
        raise ConfigError(ROLE_MAP_MISSING)
    raw_max = settings.ROUTING_OIDC_MAX_SESSION_SECONDS
    max_session = None
    if raw_max:
        try:
            max_session = int(raw_max)
        except ValueError:
            raise ConfigError(MAX_SESSION_BAD) from None
        if max_session < 60:
            raise ConfigError(MAX_SESSION_BAD)
    return SsoConfig(
        issuer=issuer,
        client_id=client_id,
        client_secret=settings.ROUTING_OIDC_CLIENT_SECRET,
        scopes=scopes,
        groups_claim=claim,
        role_map=role_map,
        team_map=team_map,
        name=settings.ROUTING_OIDC_NAME or DEFAULT_NAME,
        max_session_seconds=max_session,
    )


def enabled() -> bool:
    try:
        return config() is not None
    except ConfigError:
        return False


def local_login_mode() -> str:
    mode = (getattr(settings, "ROUTING_LOCAL_LOGIN", "") or "on").lower()
    return mode if mode in LOCAL_LOGIN_MODES else "on"  # a bad value is routing.E027


# --- discovery ----------------------------------------------------------------------------

_discovered: dict[str, tuple[float, dict]] = {}
_discovery_lock = threading.Lock()


def discovery(issuer: str) -> dict:
    """The issuer's /.well-known/openid-configuration, fetched with short timeouts and kept
    for DISCOVERY_TTL_SECONDS per process. Its `issuer` must be exactly the configured one."""
    now = time.monotonic()
    cached = _discovered.get(issuer)
    if cached and now - cached[0] < DISCOVERY_TTL_SECONDS:
        return cached[1]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    connect, read = IDP_TIMEOUT
    try:
        response = httpx.get(url, timeout=httpx.Timeout(read, connect=connect))
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        reason = type(exc).__name__
        if isinstance(exc, httpx.HTTPStatusError):
            reason = f"HTTP {exc.response.status_code}"
        raise DiscoveryError(DISCOVERY_FAILED.format(url=url, reason=reason)) from None
    if not isinstance(document, dict):
        raise DiscoveryError(DISCOVERY_FAILED.format(url=url, reason="not a JSON object"))
    if document.get("issuer") != issuer:
        raise DiscoveryError(ISSUER_MISMATCH.format(found=document.get("issuer"), expected=issuer))
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(key), str) or not _issuer_allowed(document[key]):
            raise DiscoveryError(DISCOVERY_FAILED.format(url=url, reason=f"no usable {key}"))
    with _discovery_lock:
        _discovered[issuer] = (now, document)
    return document


def forget_discovery() -> None:
    _discovered.clear()


# --- what a sign-in does to the account ------------------------------------------------------


def username_for(issuer: str, sub: str) -> str:
    digest = hashlib.sha256(f"{issuer}\0{sub}".encode()).hexdigest()[:32]
    return USERNAME_PREFIX + digest


def _groups(cfg: SsoConfig, claims: dict) -> set[str]:
    groups = claims.get(cfg.groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    elif not isinstance(groups, list | tuple):
        groups = []  # e.g. Entra ID's group overage: a reference, not the groups
    return {g for g in groups if isinstance(g, str)}


def mapped_role(cfg: SsoConfig, claims: dict) -> str | None:
    """The highest role any of the person's IdP groups maps to."""
    roles = {cfg.role_map[g] for g in _groups(cfg, claims) if g in cfg.role_map}
    return next((role for role in reversed(ROLES) if role in roles), None)


def mapped_teams(cfg: SsoConfig, claims: dict) -> dict[str, str]:
    """{team name: team role} the person's IdP groups map to; admin beats member."""
    groups = _groups(cfg, claims)
    teams: dict[str, str] = {}
    for group, team, role in cfg.team_map:
        if group in groups and teams.get(team) != TeamRole.ADMIN:
            teams[team] = role
    return teams


def _idp_actor(cfg: SsoConfig) -> str:
    return f"idp:{cfg.issuer}"[:150]


@transaction.atomic
def sso_user_sync(
    *, cfg: SsoConfig, claims: dict
) -> tuple[AbstractUser, str | None, dict[str, str]]:
    """Find the account of (issuer, sub), create it on a first sign-in, and set its role and
    its IdP-given team memberships to exactly what the IdP groups map to. Returns the user,
    the role (or None) and {team: team role} of the mapped teams that exist. Every change
    is audited."""
    User = get_user_model()
    sub = claims["sub"]
    username = username_for(cfg.issuer, sub)
    user = User.objects.select_for_update().filter(username=username).first()
    created = user is None
    if created:
        user = User.objects.create_user(username)  # no usable password: SSO only
        audit.record(
            actor=_idp_actor(cfg),
            action="sso.user_create",
            target=username,
            changes={"issuer": [None, cfg.issuer], "sub": [None, sub]},
        )
    names = {
        "email": str(claims.get("email") or "")[:254],
        "first_name": str(claims.get("name") or claims.get("preferred_username") or "")[:150],
    }
    changed = [field for field, value in names.items() if getattr(user, field) != value]
    for field in changed:
        setattr(user, field, names[field])
    if changed:
        user.save(update_fields=changed)
    old = next((r for r in reversed(ROLES) if user.groups.filter(name=r).exists()), None)
    role = mapped_role(cfg, claims)
    if role != old:
        user.groups.remove(*Group.objects.filter(name__in=ROLES))
        if role:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        user.is_staff = role == "admin"
        user.save(update_fields=["is_staff"])
        user.__dict__.pop("_routing_role", None)
        audit.record(
            actor=_idp_actor(cfg),
            action="sso.role",
            target=username,
            changes={"role": [old, role]},
        )
    teams = _sync_teams(cfg=cfg, user=user, wanted=mapped_teams(cfg, claims))
    return user, role, teams


def _sync_teams(*, cfg: SsoConfig, user: AbstractUser, wanted: dict[str, str]) -> dict[str, str]:
    """Memberships the IdP gave are re-applied exactly: added, role changed, removed. One an
    admin added by hand is left alone unless a mapped group names its team, which makes it
    the IdP's (with the mapped role), so that the IdP can later take it away."""
    actor = _idp_actor(cfg)
    found = {team.name: team for team in Team.objects.filter(name__in=wanted)}
    applied: dict[str, str] = {}
    for name, role in wanted.items():
        team = found.get(name)
        if team is None:
            # Teams are made here, not by the IdP: a typo in the map must not create one.
            audit.record(
                actor=actor,
                action="sso.team_unknown",
                target=services.team_target(name),
                changes={"user": user.get_username(), "team_role": role},
            )
            continue
        services.team_member_set(team=team, user=user, role=role, actor=actor, from_sso=True)
        applied[name] = role
    gone = user.team_memberships.filter(from_sso=True).exclude(team__name__in=applied)
    for membership in gone.select_related("team"):
        services.team_member_remove(team=membership.team, user=user, actor=actor)
    user.__dict__.pop("_routing_teams", None)
    return applied


def audit_sign_in(
    *, cfg: SsoConfig, user: AbstractUser, role: str | None, teams: dict[str, str], expires: str
) -> None:
    audit.record(
        actor=user,
        action="sso.sign_in",
        target=user.get_username(),
        changes={
            "role": [None, role],
            "teams": [None, teams],
            "session_expires": [None, expires],
        },
    )


def audit_failure(*, cfg: SsoConfig | None, reason: str, sub: str | None, address: str) -> None:
    audit.record(
        actor=_idp_actor(cfg) if cfg else "sso",
        action="sso.failure",
        target=username_for(cfg.issuer, sub) if cfg and sub else "unknown",
        changes={"reason": [None, reason[:500]], "address": [None, address]},
    )
