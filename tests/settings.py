"""Test settings: the real settings module, with throwaway keys and a file-backed SQLite.

Real environment variables still win, so `.ci/run` can point DATABASE_URL at PostgreSQL.
Keys are generated per run and never written anywhere.
"""

import os
import tempfile

from cryptography.fernet import Fernet

os.environ.setdefault("SECRET_KEY", "tests-only-" + Fernet.generate_key().decode())
os.environ.setdefault("ROUTING_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("DATABASE_URL", "sqlite:///" + os.path.join(tempfile.gettempdir(), "ra.db"))

# The test client and live_server speak plain HTTP on loopback, like `bin/run`. Set only
# while the settings load: subprocesses that tests start get the production defaults unless
# they ask otherwise.
_https_redirect = os.environ.get("ROUTING_HTTPS_REDIRECT")
os.environ["ROUTING_HTTPS_REDIRECT"] = "0"
try:
    from routing_admin.settings import *  # noqa: E402, F403
    from routing_admin.settings import DATABASES  # noqa: E402
finally:
    if _https_redirect is None:
        del os.environ["ROUTING_HTTPS_REDIRECT"]
    else:
        os.environ["ROUTING_HTTPS_REDIRECT"] = _https_redirect

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not Django's default in-memory test database, so that tests can read the bytes
    # on disk (no plaintext key there) and a second process can share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"routing_admin_test_{os.getpid()}.sqlite3")
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ROUTING_CONFIG_RECHECK_SECONDS = 5.0
# Records stay queued until a test calls request_log.flush() on its own connection.
ROUTING_REQUEST_LOG_BACKGROUND = False
# The in-process gateway servers import routing_admin.asgi, whose start-up checks refuse
# these very test keys; subprocess tests of those checks use routing_admin.settings.
ROUTING_STARTUP_CHECKS = False
