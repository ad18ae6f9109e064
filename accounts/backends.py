"""Local passwords, the break-glass path beside single sign-on (ROUTING_LOCAL_LOGIN)."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from . import sso
from .roles import has_role


class LocalPasswordBackend(ModelBackend):
    """Django's password backend, limited by ROUTING_LOCAL_LOGIN: `on` lets everyone use a
    password, `admins` only superusers and admins, `off` nobody. The same rule ends existing
    password sessions (get_user), so turning it down takes effect at the next request.
    `routing user` and createsuperuser still create or reset an admin's password."""

    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        mode = sso.local_login_mode()
        if mode == "on":
            return True
        if mode == "admins":
            return user.is_superuser or has_role(user, "admin")
        return False
