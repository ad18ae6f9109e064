"""The first calls shown beside a new token's plaintext, on /tokens/ and on a team's page."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.http import HttpRequest

from .models import AccessToken


@dataclass(frozen=True)
class Snippet:
    key: str
    title: str
    text: str


SNIPPET_PROMPT = "Hello"


def first_call_snippets(request: HttpRequest, token: AccessToken, plaintext: str) -> list[Snippet]:
    """Ready-to-copy first calls with this server's own address and the new token. Built for
    the one response that shows the token; nothing keeps them afterwards."""
    base_url = request.build_absolute_uri("/v1")
    # A team's token without a list of its own may call what its team may: `default` might
    # not be among that.
    allowed = token.allowed_models or (token.team.allowed_models if token.team else [])
    model = allowed[0] if allowed else "default"
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": SNIPPET_PROMPT}]})
    curl = (
        f"curl {base_url}/chat/completions \\\n"
        f'  -H "Authorization: Bearer {plaintext}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{body}'"
    )
    python = (
        "from openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base_url}", api_key="{plaintext}")\n'
        "reply = client.chat.completions.create(\n"
        f'    model="{model}", messages=[{{"role": "user", "content": "{SNIPPET_PROMPT}"}}]\n'
        ")\n"
        "print(reply.choices[0].message.content)"
    )
    env = f"OPENAI_BASE_URL={base_url}\nOPENAI_API_KEY={plaintext}"
    return [
        Snippet("curl", "curl", curl),
        Snippet("python", "Python (openai)", python),
        Snippet("env", "Environment (.env or shell)", env),
    ]
