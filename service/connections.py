"""uvicorn's HTTP protocol with a deadline for request headers.

uvicorn closes a keep-alive connection that stays idle after a response (`--keep-alive-timeout`), but not one
that connects and never sends a request, nor one that trickles its headers in a byte at a time: each such
socket would be held open for ever. Here a connection must send a whole request's headers within
`header_timeout` seconds of connecting, and of each response; the body has its own deadline (`Edge`).
"""

from __future__ import annotations

import asyncio
from asyncio import TimerHandle

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout = 10.0
    """Seconds; set once per process by the app factory (`--header-timeout`)."""

    headers_due: TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def on_headers_complete(self) -> None:
        self._cancel()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._expect_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _expect_headers(self) -> None:
        self._cancel()
        self.headers_due = self.loop.call_later(self.header_timeout, self._too_slow)

    def _cancel(self) -> None:
        if self.headers_due is not None:
            self.headers_due.cancel()
            self.headers_due = None

    def _too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()
