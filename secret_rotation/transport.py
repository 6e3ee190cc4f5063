"""One HTTP connection pool per worker process, shared by every SDK client (Key Vault, Storage queue and
blob, Event Grid, the managed-identity endpoint).

Where it sits: `composition` builds one `SharedHttp` and hands `transport()` to each client it builds,
through azure-core's documented `transport=AioHttpTransport(session=..., session_owner=False)` option.

Why: azure-core turns a CA *path* (`connection_verify="ca.pem"`) into a new `ssl.SSLContext` on every
request, and aiohttp keys its pooled connections by that context, so no connection is ever reused: a new
TCP + TLS handshake per request and hundreds of MB of contexts under load. Here the trust (the system
store in Azure, the local stack's CA when `KEYVAULT_CA_BUNDLE` is set) is loaded once into the
connector, the clients pass no `connection_verify`, and connections are kept alive as in production.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp
    from azure.core.pipeline.transport import AioHttpTransport


class SharedHttp:
    """The process's one `aiohttp.ClientSession`, opened on first use (it must be made inside the event
    loop) and closed by `close()`; SDK clients only borrow it (`session_owner=False`)."""

    def __init__(self, ca_bundle: str | None, *, trace_configs: Sequence[aiohttp.TraceConfig] = ()) -> None:
        self._ca_bundle = ca_bundle
        self._trace_configs = tuple(trace_configs)  # the benchmark counts connections and requests here
        self._session: aiohttp.ClientSession | None = None

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._ca_bundle)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context()),
                # What azure-core's own AioHttpTransport session uses: proxies from the environment, no
                # cookies, bodies handed to the SDK undecoded (it decodes them itself).
                trust_env=True,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trace_configs=list(self._trace_configs) or None,
            )
        return self._session

    def transport(self) -> AioHttpTransport:
        """A transport for one SDK client over the shared session (closing the client leaves it open)."""
        from azure.core.pipeline.transport import AioHttpTransport

        return AioHttpTransport(session=self.session, session_owner=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
