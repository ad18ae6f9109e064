"""`python -m routing_admin` (what `bin/run` calls): run the app on the embedded default.

On first start it writes a local `.env` with a generated SECRET_KEY and encryption key;
this is the only place the project ever generates a key. Then it applies migrations and
serves on 127.0.0.1.

It serves plain HTTP on loopback: DEBUG stays off (error pages never show a traceback), and
ROUTING_HTTPS_REDIRECT=0 turns off the HTTPS redirect and Secure cookies, which a system check
allows for loopback ALLOWED_HOSTS only. The generated keys are marked as development keys
(the "dev-only-" prefix, and the encryption key's fingerprint in ROUTING_DEV_KEY_IDS), so
that the checks refuse them anywhere else.
"""

import argparse
import os
import secrets
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = BASE_DIR / ".env"
# Not vLLM's 8000, LiteLLM proxy's 4000, LM Studio's 1234 or Ollama's 11434.
DEFAULT_PORT = 8420
DEV_SECRET_KEY_PREFIX = "dev-only-"

ENV_HEADER = """\
# Written by `bin/run` for local use. Keep this file private (mode 0600) and out of git.
# Losing ROUTING_ENCRYPTION_KEYS makes every stored API key unreadable: back it up.
"""


def ensure_env_file(path: Path = ENV_FILE) -> list[str]:
    """Add the keys that are neither in the environment nor in the file; return their names."""
    from cryptography.fernet import Fernet
    from dotenv import dotenv_values

    from providers.checks import dev_key_id

    existing = dotenv_values(path) if path.exists() else {}

    def missing(name: str) -> bool:
        return not (os.environ.get(name, "").strip() or (existing.get(name) or "").strip())

    generated = {}
    if missing("SECRET_KEY"):
        generated["SECRET_KEY"] = DEV_SECRET_KEY_PREFIX + secrets.token_urlsafe(50)
    if missing("ROUTING_ENCRYPTION_KEYS"):
        key = Fernet.generate_key().decode()
        generated["ROUTING_ENCRYPTION_KEYS"] = key
        ids = [(existing.get("ROUTING_DEV_KEY_IDS") or "").strip(), dev_key_id(key)]
        generated["ROUTING_DEV_KEY_IDS"] = ",".join(filter(None, ids))
    ours = generated or (path.exists() and path.read_text().startswith(ENV_HEADER))
    if ours and missing("ROUTING_HTTPS_REDIRECT"):
        # So that `manage.py` commands run beside `bin/run` see the same loopback deployment.
        generated["ROUTING_HTTPS_REDIRECT"] = "0"
    if generated:
        new_file = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as handle:
            if new_file:
                handle.write(ENV_HEADER)
            for name, value in generated.items():
                handle.write(f"{name}={value}\n")
    return list(generated)


def parse_args(argv: list[str] | None = None, env_file: Path = ENV_FILE) -> argparse.Namespace:
    """--host and --port; else ROUTING_HOST and ROUTING_PORT, from the environment or, like
    every other setting, from .env (settings are not loaded yet: read it here)."""
    from dotenv import dotenv_values

    existing = dotenv_values(env_file) if env_file.exists() else {}

    def setting(name: str, default: str) -> str:
        return os.environ.get(name, "").strip() or (existing.get(name) or "").strip() or default

    parser = argparse.ArgumentParser(prog="bin/run", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=setting("ROUTING_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=setting("ROUTING_PORT", str(DEFAULT_PORT)))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    for name in ensure_env_file():
        print(f"Wrote {name} into {ENV_FILE} (back it up).", file=sys.stderr)

    # Plain HTTP on loopback (see the docstring); an explicit setting still wins.
    os.environ.setdefault("ROUTING_HTTPS_REDIRECT", "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routing_admin.settings")
    # LiteLLM is imported in the background while the server starts, not on the first call.
    os.environ.setdefault("ROUTING_PRELOAD_LITELLM", "1")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    print(f"Routing Admin: http://{args.host}:{args.port}/", file=sys.stderr)
    import uvicorn

    # One process, as production runs each worker: the same application object and start-up
    # checks (routing_admin/asgi.py), lifespan on so the request log is flushed at shutdown.
    uvicorn.run("routing_admin.asgi:application", host=args.host, port=args.port, lifespan="on")


if __name__ == "__main__":
    main()
