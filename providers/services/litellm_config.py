"""LiteLLM proxy `config.yaml`: export the configuration as one, import one back.

The file holds no secret: API keys and custom header values are `os.environ/NAME`
references, and their values travel separately (an env file written with mode 0600). The
import goes through the same services as the dashboard, in one transaction: if any entry is
invalid, nothing is imported.

The work is split by direction: litellm_export.py writes the files; litellm_read.py reads
them and each entry, litellm_plan.py decides what the entries add up to, and
litellm_import.py applies that. This module is the public face of the four.
"""

from .litellm_export import ENV_REF, export_config, render_env, render_yaml, write_env_file
from .litellm_import import ImportReport, import_config
from .litellm_read import MAX_CONFIG_BYTES, parse_env, parse_yaml

__all__ = [
    "ENV_REF",
    "MAX_CONFIG_BYTES",
    "ImportReport",
    "export_config",
    "import_config",
    "parse_env",
    "parse_yaml",
    "render_env",
    "render_yaml",
    "write_env_file",
]
