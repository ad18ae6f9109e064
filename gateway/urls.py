from django.urls import path, re_path

from .views import api, tokens

urlpatterns = [
    path("v1/chat/completions", api.chat_completions, name="gateway_chat"),
    path("v1/models", api.models, name="gateway_models"),
    path("v1/models/<path:model_id>", api.model_detail, name="gateway_model"),
    path("v1/providers", api.providers, name="gateway_providers"),
    # Any other /v1/ path answers in OpenAI's error shape.
    re_path(r"^v1/(?P<path>.*)$", api.not_found, name="gateway_not_found"),
    path("healthz", api.healthz, name="healthz"),
    path("tokens/", tokens.token_list, name="token_list"),
    path("tokens/<str:name>/revoke/", tokens.token_revoke, name="token_revoke"),
]
