import jwt
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView

ROLES = ("viewer", "editor", "admin")


class Denied(Exception):
    pass


class RoutingOIDCBackend(OIDCAuthenticationBackend):
    def verify_token(self, token, **kwargs):
        # Full ID-token validation; the library itself skips aud and iss and has no leeway.
        header = jwt.get_unverified_header(token)
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation("unexpected alg")
        key = self.retrieve_matching_jwk(token)  # GETs the JWKS on every sign-in: rotation-safe
        try:
            payload = jwt.decode(
                token, key, algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID, issuer=settings.OIDC_OP_ISSUER,
                leeway=settings.OIDC_LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"ID token rejected: {exc}") from exc
        if isinstance(payload["aud"], list) and len(payload["aud"]) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("azp mismatch")
        nonce = kwargs.get("nonce")
        if not nonce or not constant_time_compare(payload.get("nonce") or "", nonce):
            raise SuspiciousOperation("nonce mismatch")
        self.request.oidc_id_claims = payload  # for groups and session expiry
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        info = super().get_userinfo(access_token, id_token, payload)
        if info.get("sub") != payload["sub"]:  # OIDC Core 5.3.2
            raise SuspiciousOperation("userinfo sub mismatch")
        return {**info, **payload}  # signed ID-token claims win

    def verify_claims(self, claims):
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        # Match on the stable subject, never on e-mail (a local break-glass admin with the
        # same e-mail must not be taken over). Real code: an OIDCIdentity(issuer, sub) model.
        return self.UserModel.objects.filter(username=f"oidc:{claims['sub']}")

    def create_user(self, claims):  # first sign-in: create, then map groups like every sign-in
        user = self.UserModel.objects.create_user(f"oidc:{claims['sub']}", email=claims.get("email", ""))
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        idp_groups = set(claims.get("groups") or [])
        roles = {settings.ROUTING_OIDC_GROUP_MAP[g] for g in idp_groups if g in settings.ROUTING_OIDC_GROUP_MAP}
        wanted = set(Group.objects.filter(name__in=roles))
        current = set(user.groups.filter(name__in=ROLES))
        user.groups.remove(*(current - wanted))
        user.groups.add(*(wanted - current))
        if not roles:
            self.request.oidc_denied = "Your identity provider account is in no group that this app maps to a role."
            raise SuspiciousOperation("no mapped group")  # caught by authenticate() -> None
        return user


class RoutingCallbackView(OIDCAuthenticationCallbackView):
    def get(self, request):
        try:
            return super().get(request)
        except SuspiciousOperation as exc:  # unknown state, bad ID token: the library raises (-> 400)
            request.oidc_denied = f"The sign-in could not be verified ({exc}). Start again."
            return self.login_failure()

    def login_failure(self):
        reason = getattr(self.request, "oidc_denied", "Sign-in failed.")
        from django.http import HttpResponse
        return HttpResponse(f"DENIED: {reason}", status=403)

    def login_success(self):
        response = super().login_success()
        import datetime as dt
        exp = self.request.oidc_id_claims["exp"]
        self.request.session.set_expiry(dt.datetime.fromtimestamp(exp, tz=dt.UTC))
        return response
