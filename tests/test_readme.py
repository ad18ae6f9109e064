"""Every setting the app reads from the environment is in one of the README's tables."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where settings are read: settings.py, and what runs before it (bin/run, the ASGI entry).
READERS = ["routing_admin/settings.py", "routing_admin/asgi.py", "routing_admin/__main__.py"]
READ = re.compile(r"""(?:_env\w*|environ\.get|setting)\(\s*["']([A-Z][A-Z0-9_]+)["']""")
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}  # Django's own, set by manage.py and asgi.py


def _read_names() -> set[str]:
    text = "\n".join((ROOT / path).read_text() for path in READERS)
    return set(READ.findall(text)) - NOT_SETTINGS


def test_every_setting_read_from_the_environment_is_in_a_readme_table():
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("|")]
    names = _read_names()
    assert {"ROUTING_CORS_ALLOWED_ORIGINS", "ROUTING_REQUEST_LOG_MAX_PENDING"} <= names
    undocumented = sorted(n for n in names if not any(f"`{n}`" in row for row in rows))
    assert undocumented == []
