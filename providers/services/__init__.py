"""The service layer: every write and every model call goes through here.

Forms, views, the command line and the gateway call these functions through this package
(`from providers import services`, then `services.provider_create(...)`); none of them
writes to the models directly, nor imports a module of this package by name.
"""

from ..importexport.env_import import MAX_ENV_BYTES, import_env
from ..importexport.litellm_export import export_config, render_env, render_yaml, write_env_file
from ..importexport.litellm_import import ImportReport, import_config
from ..importexport.litellm_read import MAX_CONFIG_BYTES, parse_env, parse_yaml
from .apis import NO_EMBEDDINGS, NO_EMBEDDINGS_IN_GROUP, aembedding, amessages, aresponses
from .calls import (
    ProviderError,
    Unavailable,
    UnknownModel,
    acall,
    acompletion,
    answered_by,
    atext_completion,
    completion,
    litellm_models,
    log_refused,
)
from .connection import (
    TEST_ALL_CONCURRENCY,
    ConnectionResult,
    explain,
    provider_test,
    provider_test_many,
    provider_test_unsaved,
)
from .groups import (
    DeploymentSpec,
    GroupTestResult,
    group_remove,
    group_save,
    group_test,
    router_settings_get,
    router_settings_update,
)
from .health import HEALTH_CHECK_ACTOR, HISTORY_LENGTH, failure_threshold, provider_drain_set
from .keys import RotationReport, rotate_keys
from .providers import (
    KEEP,
    default_model_get,
    default_model_revert,
    default_model_set,
    parse_model_names,
    provider_create,
    provider_draft,
    provider_remove,
    provider_update,
    validate_declared_models,
)
from .relay import Relayed

__all__ = [
    "Relayed",
    "litellm_models",
    "log_refused",
    "MAX_CONFIG_BYTES",
    "MAX_ENV_BYTES",
    "import_env",
    "ImportReport",
    "export_config",
    "import_config",
    "parse_env",
    "parse_yaml",
    "render_env",
    "render_yaml",
    "write_env_file",
    "DeploymentSpec",
    "GroupTestResult",
    "group_remove",
    "group_test",
    "group_save",
    "router_settings_get",
    "router_settings_update",
    "KEEP",
    "ConnectionResult",
    "TEST_ALL_CONCURRENCY",
    "HEALTH_CHECK_ACTOR",
    "HISTORY_LENGTH",
    "failure_threshold",
    "provider_drain_set",
    "explain",
    "provider_draft",
    "provider_test_unsaved",
    "ProviderError",
    "RotationReport",
    "Unavailable",
    "UnknownModel",
    "answered_by",
    "acall",
    "amessages",
    "aresponses",
    "acompletion",
    "NO_EMBEDDINGS",
    "NO_EMBEDDINGS_IN_GROUP",
    "aembedding",
    "atext_completion",
    "completion",
    "default_model_get",
    "default_model_revert",
    "default_model_set",
    "provider_create",
    "provider_remove",
    "provider_test",
    "provider_test_many",
    "provider_update",
    "parse_model_names",
    "validate_declared_models",
    "rotate_keys",
]
