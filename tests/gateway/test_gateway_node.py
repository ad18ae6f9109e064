"""The official `openai` npm package under Node against the gateway (uvicorn): plain,
streamed with usage, a model with '/' in its ID, and an error. `bin/test` installs the
package from tests/node/package-lock.json; the test is skipped only where Node is absent."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.gateway import test_gateway

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
NODE = shutil.which("node")
NOT_INSTALLED = (
    "The openai npm package is not installed in tests/node: run `npm ci --prefix tests/node` "
    "(bin/test does)."
)
# The in-process uvicorn gateway and its providers, from tests/gateway/test_gateway.py.
gateway = test_gateway.gateway
setup = test_gateway.setup

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(NODE is None, reason="Node.js is not installed (no `node` on PATH)"),
]


def test_the_openai_npm_package_works_plain_and_streamed(gateway, setup):
    a, _, token = setup
    assert (NODE_DIR / "node_modules" / "openai").is_dir(), NOT_INSTALLED
    run = subprocess.run(
        [NODE, str(NODE_DIR / "chat.mjs"), gateway + "/v1", token],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["plain"] == "from A"
    assert "".join(seen["pieces"]) == "from A" and len(seen["pieces"]) >= 2
    assert seen["usage"]["prompt_tokens"] == 7 and seen["usage"]["choices"] == 0
    assert a.last.json()["stream_options"] == {"include_usage": True}
    assert seen["model"] == "pa/gpt-4o-mini"
    assert seen["notFound"] == {"status": 404, "code": "model_not_found"}
