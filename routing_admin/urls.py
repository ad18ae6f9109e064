from django.urls import include, path, re_path

from gateway.views import api as gateway

urlpatterns = [
    path("v1/chat/completions", gateway.chat_completions, name="gateway_chat"),
    path("v1/models", gateway.models, name="gateway_models"),
    path("v1/models/<path:model_id>", gateway.model_detail, name="gateway_model"),
    path("v1/providers", gateway.providers, name="gateway_providers"),
    # Any other /v1/ path answers in OpenAI's error shape.
    re_path(r"^v1/(?P<path>.*)$", gateway.not_found, name="gateway_not_found"),
    path("healthz", gateway.healthz, name="healthz"),
    path("", include("providers.urls")),
]

# An unexpected error on /v1/ answers in OpenAI's error shape; elsewhere, Django's 500 page.
handler500 = gateway.server_error
