from django.urls import path, re_path

from observability.views import metrics

from .views import api, azure, completions, embeddings, messages, responses, tokens

# The endpoints the fast path (gateway/fastpath.py) serves itself, outside Django's
# handler: one table, read by it and by the URL patterns below. This app is mounted at the
# site's root (routing_admin/urls.py), so a route here is the request's path without "/".
FAST_ROUTES = {
    "v1/chat/completions": (api.chat_completions, "gateway_chat"),
    "v1/embeddings": (embeddings.embeddings, "gateway_embeddings"),
    "v1/completions": (completions.completions, "gateway_completions"),
    "v1/models": (api.models, "gateway_models"),
    "metrics": (metrics, "metrics"),
}

# Azure OpenAI's deployment paths. A deployment may be "provider/model", which the SDK puts
# in the path unquoted; chat/completions is matched before completions for that reason.
AZURE_DEPLOYMENT = r"^openai/deployments/(?P<deployment>.+)/"

urlpatterns = [
    *(path(route, view, name=name) for route, (view, name) in FAST_ROUTES.items()),
    path("v1/models/<path:model_id>", api.model_detail, name="gateway_model"),
    path("v1/providers", api.providers, name="gateway_providers"),
    re_path(AZURE_DEPLOYMENT + r"chat/completions$", azure.chat_completions, name="azure_chat"),
    re_path(AZURE_DEPLOYMENT + r"embeddings$", azure.embeddings, name="azure_embeddings"),
    re_path(AZURE_DEPLOYMENT + r"completions$", azure.completions, name="azure_completions"),
    path("v1/responses", responses.responses, name="gateway_responses"),
    path("v1/messages", messages.messages, name="gateway_messages"),
    # Any other /v1/ path answers in OpenAI's error shape; "/v1" itself too, rather than
    # Django's slash-appending redirect (a POST would lose its body to it). Azure's likewise.
    re_path(r"^v1(?:/(?P<path>.*))?$", api.not_found, name="gateway_not_found"),
    re_path(r"^openai(?:/(?P<path>.*))?$", api.not_found, name="azure_not_found"),
    path("healthz", api.healthz, name="healthz"),
    path("tokens/", tokens.token_list, name="token_list"),
    path("tokens/<str:name>/", tokens.token_detail, name="token_detail"),
    path("tokens/<str:name>/revoke/", tokens.token_revoke, name="token_revoke"),
]
