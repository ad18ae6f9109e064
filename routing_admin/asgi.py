"""ASGI entry point, for production: `uvicorn routing_admin.asgi:application --workers N`.

ROUTING_PRELOAD_LITELLM=1 imports LiteLLM when a worker starts (in a background thread)
instead of on its first model call: set it for gateway workers.

Static files (the stylesheet, htmx) are served by Django's ASGI static handler, which
answers /static/ itself and passes every other path straight through, so gateway requests
pay nothing for it. Set ROUTING_SERVE_STATIC=0 when a reverse proxy serves /static/ (after
`python manage.py collectstatic`).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routing_admin.settings")
application = get_asgi_application()

from gateway.fastpath import FastPath  # noqa: E402 - needs the settings above
from observability import setup as observability_setup  # noqa: E402 - needs the settings
from providers.checks import refuse_to_start_on_errors  # noqa: E402 - needs the settings above
from providers.middleware import LifespanShutdown  # noqa: E402 - needs the settings above

# `manage.py check` guards migrate and runserver; uvicorn imports this module and nothing
# else, so a production server on development keys must be refused here.
refuse_to_start_on_errors()

# /v1/chat/completions and /v1/models skip Django's per-request thread hops (fastpath.py).
application = FastPath(application)
# Metrics (/metrics) and traces (OTLP), when configured; else the application as it is.
application = observability_setup.install(application)
# uvicorn exits by re-raising SIGTERM, which skips atexit: flush the request log on shutdown.
application = LifespanShutdown(application)

if os.environ.get("ROUTING_PRELOAD_LITELLM", "").strip() in {"1", "true", "yes", "on"}:
    from providers.routing.llm import preload_in_background

    preload_in_background()

if os.environ.get("ROUTING_SERVE_STATIC", "1").strip() not in {"0", "false", "no", "off"}:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
