"""A real OpenID Connect provider for the single sign-on tests: npm `oidc-provider` under
Node (tests/oidc/op.mjs), on 127.0.0.1, started once per session beside live_server.

Its accounts (and their groups) are a JSON file it re-reads on every sign-in, so a test
rewrites the file instead of restarting it; `tamper(mode)` makes its token endpoint hand out
a spoiled ID token (see op.mjs). bin/test installs it with `npm ci --prefix tests/oidc`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

OP_DIR = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "routing-admin"
CLIENT_SECRET = "test-client-secret-Zq8X2w"  # the OP's own, for this test client only
ROLE_MAP = "platform-admins=admin,llm-editors=editor,staff=viewer"
# Groups to teams; "ghost" is a team nobody created (skipped at sign-in, and audited).
TEAM_MAP = "team-red=red:member,red-leads=red:admin,team-blue=blue:member,team-ghost=ghost:admin"
NODE_MISSING = "node is not installed: the single sign-on tests drive oidc-provider under Node"
NOT_INSTALLED = (
    "tests/oidc/node_modules is missing: run `npm ci --prefix tests/oidc` (bin/test does)"
)


@dataclass
class Provider:
    issuer: str
    accounts_file: Path
    process: subprocess.Popen

    @property
    def port(self) -> int:
        return int(self.issuer.rsplit(":", 1)[1])

    def accounts(self, accounts: dict[str, list[str]]) -> None:
        """{login: [groups]}: who may sign in, and their groups from now on."""
        data = {
            login: {"email": f"{login}@example.test", "name": login.title(), "groups": groups}
            for login, groups in accounts.items()
        }
        self.accounts_file.write_text(json.dumps(data))

    def tamper(self, mode: str) -> None:
        httpx.get(f"{self.issuer}/__test/tamper", params={"mode": mode}).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_provider(live_server, accounts_file: Path, **env: str) -> Provider:
    """Start op.mjs for live_server's callback; `env` adds OIDC_* settings (OIDC_PORT,
    OIDC_KID, OIDC_SIGN_ALG). Skips where node is absent."""
    if shutil.which("node") is None:
        pytest.skip(NODE_MISSING)
    if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(NOT_INSTALLED)
    if not accounts_file.exists():
        accounts_file.write_text("{}")
    port = re.search(r":(\d+)$", live_server.url).group(1)
    redirects = ",".join(
        f"http://{host}:{port}/oidc/callback/" for host in ("localhost", "127.0.0.1")
    )
    process = subprocess.Popen(
        ["node", "op.mjs"],
        cwd=OP_DIR,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "OIDC_PORT": "0",
            "OIDC_ACCOUNTS": str(accounts_file),
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_REDIRECT_URI": redirects,
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # only Node's "unsupported runtime" notice
        text=True,
    )
    line = process.stdout.readline()  # blocks until the OP listens: no sleep
    if not line.startswith("READY "):
        process.kill()
        pytest.fail(f"the test OpenID provider did not start: {line!r}")
    return Provider(issuer=line.split()[1], accounts_file=accounts_file, process=process)


def configure(settings, provider: Provider) -> None:
    """Single sign-on against `provider`, set as the README documents it."""
    from accounts import sso as sso_module

    settings.ROUTING_OIDC_ISSUER = provider.issuer
    settings.ROUTING_OIDC_CLIENT_ID = CLIENT_ID
    settings.ROUTING_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.ROUTING_OIDC_SCOPES = "openid email profile groups"
    settings.ROUTING_OIDC_GROUPS_CLAIM = "groups"
    settings.ROUTING_OIDC_ROLE_MAP = ROLE_MAP
    settings.ROUTING_OIDC_TEAM_MAP = TEAM_MAP
    settings.ROUTING_OIDC_NAME = "Test IdP"
    settings.ROUTING_OIDC_MAX_SESSION_SECONDS = ""
    sso_module.forget_discovery()


@pytest.fixture(scope="session")
def oidc_provider(live_server, tmp_path_factory) -> Provider:
    provider = start_provider(live_server, tmp_path_factory.mktemp("oidc") / "accounts.json")
    yield provider
    provider.stop()


@pytest.fixture
def idp(settings, oidc_provider, transactional_db) -> Provider:
    """Single sign-on configured against the session's test provider, reset for each test."""
    from accounts import sso as sso_module

    configure(settings, oidc_provider)
    oidc_provider.tamper("none")
    oidc_provider.accounts({})
    yield oidc_provider
    oidc_provider.tamper("none")
    sso_module.forget_discovery()


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+/interaction/[^"]+)"')


def submit_login(client: httpx.Client, page: httpx.Response, login: str) -> httpx.Response:
    """Fill in and submit the provider's login form, as a person would; follows redirects."""
    match = _FORM_ACTION.search(page.text)
    assert match, f"no login form of the provider at {page.url}"
    return client.post(
        match.group(1),
        data={"prompt": "login", "login": login, "password": "any"},
        follow_redirects=True,
    )
