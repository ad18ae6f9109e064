"""System checks of the limits' settings (routing.E030-E039): a bad value stops the app at
start with a message naming the variable."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

FAILURE_MODE_ID = "routing.E030"
REDIS_URL_ID = "routing.E031"
FAILURE_MODE_BAD = (
    "ROUTING_LIMITS_ON_REDIS_FAILURE must be open (let calls through uncounted while Redis is "
    "down) or closed (refuse them); it is {value!r}."
)
REDIS_URL_BAD = (
    "ROUTING_REDIS_URL must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0."
)


@register()
def check_limits_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    mode = settings.ROUTING_LIMITS_ON_REDIS_FAILURE
    if mode not in ("open", "closed"):
        errors.append(Error(FAILURE_MODE_BAD.format(value=mode), id=FAILURE_MODE_ID))
    url = settings.ROUTING_REDIS_URL
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        # The value may hold a password: the message does not repeat it.
        errors.append(Error(REDIS_URL_BAD, id=REDIS_URL_ID))
    return errors
