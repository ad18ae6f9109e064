"""The service layer: every write and every model call goes through here.

Forms, the command line and (later) the gateway call these functions; none of them writes
to the models directly.
"""


from ..importexport.litellm_export import export_config, render_env, render_yaml, write_env_file
from ..importexport.litellm_import import ImportReport, import_config
from ..importexport.litellm_read import MAX_CONFIG_BYTES, parse_env, parse_yaml
from .calls import (
    ProviderError,
    Unavailable,
    UnknownModel,
    acompletion,
    answered_by,
    completion,
    log_refused,
)
from .connection import (
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
from .keys import RotationReport, rotate_keys
from .providers import (
    KEEP,
    default_model_get,
    default_model_revert,
    default_model_set,
    provider_create,
    provider_draft,
    provider_remove,
    provider_update,
)

__all__ = [
    "log_refused",
    "MAX_CONFIG_BYTES",
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
    "explain",
    "provider_draft",
    "provider_test_unsaved",
    "ProviderError",
    "RotationReport",
    "Unavailable",
    "UnknownModel",
    "answered_by",
    "acompletion",
    "completion",
    "default_model_get",
    "default_model_revert",
    "default_model_set",
    "provider_create",
    "provider_remove",
    "provider_test",
    "provider_test_many",
    "provider_update",
    "rotate_keys",
]
