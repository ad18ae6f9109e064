from django.urls import include, path

from gateway.views import api

urlpatterns = [
    # The gateway first: its catch-all answers any other /v1/ path in OpenAI's error shape.
    path("", include("gateway.urls")),
    path("", include("providers.urls")),
    path("", include("usage.urls")),
    path("", include("accounts.urls")),
]

# An unexpected error on /v1/ answers in OpenAI's error shape; elsewhere, Django's 500 page.
handler500 = api.server_error
