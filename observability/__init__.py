"""Watching the gateway: Prometheus metrics (GET /metrics) and OpenTelemetry traces.

setup.py turns them on as configured, views.py answers scrapers, metrics.py and tracing.py
count and trace at the seams every call passes (the request log's record, the outbound
transport, the snapshot's routing), asgi.py notes what each gateway request is.
"""
