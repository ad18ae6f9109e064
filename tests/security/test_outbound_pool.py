"""The outbound pool keeps connections alive, and never hands out one the server closed.

The pool asks only the connection it is about to reuse whether the server closed it (issue
18: asking every pooled connection on every request cost a tenth of the gateway's CPU), so
these prove the two things that check is for, on a real server."""

import asyncio

from providers.routing import outbound


class _Server:
    """HTTP/1.1 on 127.0.0.1 that answers each request with "ok"; with `close_idle` it hangs
    up on each connection right after answering, without saying so (as a server whose
    keep-alive timeout ran out does)."""

    def __init__(self, close_idle: bool) -> None:
        self.close_idle = close_idle
        self.connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                if self.close_idle:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/"

    async def __aexit__(self, *exc) -> None:
        self._server.close()


async def _get_twice(close_idle: bool) -> tuple[list[str], int]:
    server = _Server(close_idle)
    async with server as url, outbound.async_client(timeout=5, local=True) as client:
        first = await client.get(url)
        if close_idle:
            # The hang-up reaches this side before the pool chooses a connection.
            await _closed_by_peer(client)
        second = await client.get(url)
    return [first.text, second.text], server.connections


async def _closed_by_peer(client) -> None:
    """Until the pool's one idle connection reads as closed by the server (bounded)."""
    pool = client._transport._pool()._pool
    for _ in range(200):
        if all(c._connection._network_stream.get_extra_info("is_readable")
               for c in pool.connections):  # fmt: skip
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the server's hang-up never reached the client")


def test_a_kept_alive_connection_carries_the_next_request():
    answers, connections = asyncio.run(_get_twice(close_idle=False))
    assert answers == ["ok", "ok"]
    assert connections == 1


def test_a_connection_the_server_closed_while_idle_is_not_reused():
    answers, connections = asyncio.run(_get_twice(close_idle=True))
    # Reusing the dead connection would fail the second request ("Server disconnected").
    assert answers == ["ok", "ok"]
    assert connections == 2


def test_connections_beyond_the_keep_alive_limit_are_closed_when_idle(monkeypatch):
    concurrency = 8
    monkeypatch.setattr(outbound, "LIMITS", outbound.httpx.Limits(
        max_connections=100, max_keepalive_connections=2, keepalive_expiry=30))  # fmt: skip

    async def run() -> tuple[int, int]:
        server = _Server(close_idle=False)
        gate = asyncio.Event()
        async with server as url, outbound.async_client(timeout=5, local=True) as client:

            async def one():
                await gate.wait()
                return (await client.get(url)).text

            tasks = [asyncio.create_task(one()) for _ in range(concurrency)]
            await asyncio.sleep(0)
            gate.set()
            assert await asyncio.gather(*tasks) == ["ok"] * concurrency
            opened = server.connections
            await client.get(url)
            return opened, len(client._transport._pool()._pool.connections)

    opened, kept = asyncio.run(run())
    assert opened > 2  # the burst needed more connections than are kept
    assert kept <= 2
