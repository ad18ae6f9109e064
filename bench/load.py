"""Load over HTTP for the server arms: one keep-alive httpx client at concurrency 1 (the
same client as the floor arm), asyncio with httpx.AsyncClient at higher concurrency."""

from __future__ import annotations

import asyncio
import resource
import time

import httpx

from .servers import Server


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class HttpLoad:
    """Keeps its clients (and so its connections to the workers) from block to block."""

    def __init__(self, server: Server, body: bytes, concurrency: int) -> None:
        self.server, self.body = server, body
        self.url = server.base_url + "/v1/chat/completions"
        self.client = httpx.Client(timeout=60)
        self.concurrency = concurrency
        self.loop = asyncio.new_event_loop()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.aclient = httpx.AsyncClient(timeout=60, limits=limits)

    def run(self, seconds: float, concurrency: int) -> dict:
        """Requests for `seconds`, `concurrency` at a time."""
        cpu0, client0 = self.server.cpu_seconds(), own_cpu()
        started = time.perf_counter()
        deadline = started + seconds
        if concurrency == 1:
            samples = self._sequential(deadline)
        else:
            samples = self.loop.run_until_complete(self._concurrent(deadline, concurrency))
        wall = time.perf_counter() - started
        return {
            "samples": samples,
            "wall": wall,
            "cpu": self.server.cpu_seconds() - cpu0,
            "client_cpu": own_cpu() - client0,
        }

    def _check(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"{self.server.name}: HTTP {response.status_code} {response.text}")
        response.json()

    def _sequential(self, deadline: float) -> list[float]:
        samples = []
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            self._check(self.client.post(self.url, content=self.body, headers=self.server.headers))
            samples.append(time.perf_counter() - t0)
        return samples

    async def _concurrent(self, deadline: float, concurrency: int) -> list[float]:
        samples: list[float] = []

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                response = await self.aclient.post(
                    self.url, content=self.body, headers=self.server.headers
                )
                self._check(response)
                samples.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return samples

    def close(self) -> None:
        self.client.close()
        self.loop.run_until_complete(self.aclient.aclose())
        self.loop.close()
