from django.urls import include, path

from providers.views import gateway

urlpatterns = [
    path("v1/chat/completions", gateway.chat_completions, name="gateway_chat"),
    path("v1/models", gateway.models, name="gateway_models"),
    path("v1/providers", gateway.providers, name="gateway_providers"),
    path("healthz", gateway.healthz, name="healthz"),
    path("", include("providers.urls")),
]

# An unexpected error on /v1/ answers in OpenAI's error shape; elsewhere, Django's 500 page.
handler500 = gateway.server_error
