import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routing_admin.settings")
application = get_wsgi_application()

from providers.checks import refuse_to_start_on_errors  # noqa: E402 - needs the settings above

# As in asgi.py: a WSGI server imports this module and runs no `manage.py check`.
refuse_to_start_on_errors()
