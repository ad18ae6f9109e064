"""OpenTelemetry traces, received over OTLP/HTTP by a tiny collector on 127.0.0.1: a gateway
request with the caller's `traceparent`, through a group whose deployment fails and whose
fallback group answers, is one server span under the caller's, with the routing, each
upstream attempt and the log record as its children."""

import gzip
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from gateway.services import token_create
from providers import services
from providers.services import DeploymentSpec as D
from tests.observability.server import ROOT, server_env, uvicorn

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Collector:
    """Receives OTLP/HTTP trace exports (protobuf) and keeps their spans."""

    def __init__(self) -> None:
        self.spans: list = []
        self.arrived = threading.Condition()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                with collector.arrived:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            collector.spans.extend(scope.spans)
                    collector.arrived.notify_all()
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, name: str, timeout: float = 60) -> list:
        with self.arrived:
            self.arrived.wait_for(lambda: any(s.name == name for s in self.spans), timeout)
            return list(self.spans)


@pytest.fixture
def collector():
    found = Collector()
    yield found
    found.server.shutdown()
    found.server.server_close()


def _attributes(span) -> dict:
    values = {}
    for item in span.attributes:
        value = item.value
        kind = value.WhichOneof("value")
        values[item.key] = getattr(value, kind) if kind != "array_value" else None
    return values


def test_a_request_with_a_fallback_is_one_tree_under_the_callers_span(
    upstream_factory, make_provider, collector
):
    a, b = upstream_factory("a"), upstream_factory("b")
    make_provider(name="pa", base_url=a.base_url + "/v1")
    make_provider(name="pb", base_url=b.base_url + "/v1")
    services.group_save(name="backup", deployments=[D("pb", "m")])
    services.group_save(name="main", deployments=[D("pa", "m")], fallbacks=["backup"])
    _, token = token_create(name="app", actor="test")
    a.fail_next(500, times=20)
    env = server_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="50",
        OTEL_SERVICE_NAME="gateway-under-test",
    )
    with uvicorn(env) as base:
        response = httpx.post(
            base + "/v1/chat/completions",
            json={"model": "main", "messages": HI},
            headers={
                "Authorization": f"Bearer {token}",
                "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
            },
            timeout=180,
        )
        assert response.status_code == 200, response.text
        spans = collector.wait_for("POST /v1/chat/completions")
    ours = [s for s in spans if s.trace_id.hex() == TRACE_ID]
    (server,) = [s for s in ours if s.name == "POST /v1/chat/completions"]
    assert server.parent_span_id.hex() == CALLER_SPAN
    children = [s for s in ours if s.parent_span_id == server.span_id]
    names = [s.name for s in children]
    assert "routing" in names and "request log" in names
    (routing,) = [s for s in children if s.name == "routing"]
    assert _attributes(routing)["routing.group"] == "main"
    attempts = [s for s in children if s.name == "upstream attempt"]
    # One span per HTTP request the providers received: the failures, then the fallback.
    assert len(attempts) == len(a.requests) + len(b.requests) >= 2
    attempts.sort(key=lambda s: s.start_time_unix_nano)
    first, last = _attributes(attempts[0]), _attributes(attempts[-1])
    assert (first["routing.provider"], first["http.response.status_code"]) == ("pa", 500)
    assert (last["routing.provider"], last["http.response.status_code"]) == ("pb", 200)
    (logged,) = [s for s in children if s.name == "request log"]
    assert _attributes(logged)["routing.fallbacks"] == 1
    assert _attributes(server)["http.response.status_code"] == 200
    # Never the caller's token, a provider's key or the prompt in an attribute.
    text = repr([_attributes(s) for s in ours])
    assert token not in text and "sk-test-" not in text and '"hi"' not in text


def test_nothing_is_imported_when_neither_is_configured():
    code = (
        "import sys, django; django.setup(); import routing_admin.asgi; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('opentelemetry', 'prometheus_client', 'observability'))))"
    )
    env = {
        k: v
        for k, v in server_env().items()
        if not k.startswith(("OTEL_", "ROUTING_METRICS_", "PROMETHEUS_"))
    }
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    done = subprocess.run(
        [sys.executable, "-c", "import json; " + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == ["observability", "observability.setup", "observability.views"]
