from django.urls import path

from .views import audit, config, dashboard, env_import, groups, provider

urlpatterns = [
    path("", dashboard.overview, name="overview"),
    path("default/", dashboard.default_set, name="default_set"),
    path("default/revert/", dashboard.default_revert, name="default_revert"),
    path("models/", provider.model_options, name="model_options"),
    path("providers/add/", provider.provider_add, name="provider_add"),
    path("providers/kind-fields/", provider.kind_fields, name="kind_fields"),
    path("providers/test-all/", provider.test_all, name="test_all"),
    path("providers/<str:name>/", provider.provider_detail, name="provider_detail"),
    path("providers/<str:name>/edit/", provider.provider_edit, name="provider_edit"),
    path("providers/<str:name>/remove/", provider.provider_remove, name="provider_remove"),
    path("providers/<str:name>/test/", provider.provider_test, name="provider_test"),
    path("providers/<str:name>/health/", provider.provider_drain, name="provider_drain"),
    path("groups/", groups.group_list, name="group_list"),
    path("groups/add/", groups.group_add, name="group_add"),
    path("groups/router/", groups.router_settings, name="router_settings"),
    path("groups/<str:name>/", groups.group_edit, name="group_edit"),
    path("groups/<str:name>/remove/", groups.group_remove, name="group_remove"),
    path("groups/<str:name>/test/", groups.group_test, name="group_test"),
    path("config/export/", config.config_export, name="config_export"),
    path("config/import/", config.config_import, name="config_import"),
    path("config/env/", env_import.env_import, name="env_import"),
    path("audit/", audit.audit_log, name="audit_log"),
]
