"""System checks of the single sign-on and local-login settings: a bad value stops the app
at start (providers.checks.refuse_to_start_on_errors) with a message naming the variable."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register

from . import sso

# routing.E020-E029 are single sign-on's.
SSO_CONFIG_ID = "routing.E020"
SSO_WITHOUT_ISSUER_ID = "routing.E021"
LOCAL_LOGIN_ID = "routing.E027"
LOCAL_LOGIN_OFF_ID = "routing.E028"

_NEEDS_ISSUER = (
    "ROUTING_OIDC_CLIENT_ID",
    "ROUTING_OIDC_CLIENT_SECRET",
    "ROUTING_OIDC_ROLE_MAP",
    "ROUTING_OIDC_TEAM_MAP",
)


@register(Tags.security)
def check_sso_settings(app_configs, **kwargs) -> list[Error]:
    errors: list[Error] = []
    try:
        cfg = sso.config()
    except sso.ConfigError as exc:
        errors.append(Error(str(exc), id=SSO_CONFIG_ID))
        cfg = None
    if not getattr(settings, "ROUTING_OIDC_ISSUER", ""):
        for name in _NEEDS_ISSUER:
            if getattr(settings, name, ""):
                errors.append(
                    Error(sso.SSO_WITHOUT_ISSUER.format(name=name), id=SSO_WITHOUT_ISSUER_ID)
                )
    mode = (getattr(settings, "ROUTING_LOCAL_LOGIN", "") or "on").lower()
    if mode not in sso.LOCAL_LOGIN_MODES:
        errors.append(Error(sso.LOCAL_LOGIN_BAD, id=LOCAL_LOGIN_ID))
    elif mode == "off" and cfg is None:
        errors.append(
            Error(
                sso.LOCAL_LOGIN_OFF_WITHOUT_SSO,
                hint="Configure single sign-on, or set ROUTING_LOCAL_LOGIN=admins or on.",
                id=LOCAL_LOGIN_OFF_ID,
            )
        )
    return errors
