"""Fault-injecting reverse proxy of the local stack, put in front of the Key Vault and identity doubles.

Tests schedule throttling (429, with or without Retry-After), conflicts (409), outages (503), connection
resets and delays through a control API on the proxy itself, then drive the real SDKs through the
proxy's URL; everything else is forwarded (method, path, query, headers minus hop-by-hop, body) and the
answer streams back unchanged. The Host header is rewritten to the upstream's authority, so the Key
Vault double serves the same vault as the direct URL, and `X-Forwarded-Host`/`-Proto` carry what the
client used so ids name the proxy. A throttle mode (`faults_throttle`) enforces Key Vault's documented
per-vault limits, scaled, on what would reach the vault.

Control API (never forwarded; see `faults_rules` for the rule semantics):
    PUT /__faults {"rules": [{"match": {"method", "path_regex"}, "action": "status"|"reset"|"delay",
                   "status", "retry_after", "delay_seconds", "times", "every", "code", "inner_code",
                   "message", "forward_first"}]}
                           replace the schedule. A "status" rule answers Key Vault's error shape
                           {"error": {"code", "message", "innererror": {"code": inner_code}}}; code and
                           message default to Key Vault's for 409 (Conflict), 429 (Throttled, no
                           Retry-After unless retry_after is set) and 503.
    GET /__faults          the schedule with per-rule counters
    DELETE /__faults       clear the schedule (the throttle mode stays as it is)
    GET /__faults/stats    {"forwarded", "injected": {"409", "429", "503", "reset", "delay", ...}, "by_rule",
                            "throttled": 429s answered by the throttle mode}
    POST /__faults/stats/reset
    PUT /__faults/throttle {"scale": S, "window_seconds": W = 10, "retry_after": null | seconds | "auto"}
                           enforce, per vault (the authority the client used), Key Vault's limits per
                           window: CREATE secret (PUT /secrets/{name}) 300 x S, all other data-plane
                           requests 4,000 x S (each at least 1); over the limit the answer is Key Vault's
                           429 (code Throttled, "... Reason: VaultRequestTypeLimitReached"), without
                           Retry-After unless retry_after asks for one ("auto": seconds until a slot
                           frees); 429s do not count, nor do requests without a bearer token (they only
                           draw the 401 challenge). Replaces the settings and zeroes the counters.
    GET /__faults/throttle {"enabled", "config", "limits": {"create", "other"}, "vaults": {authority:
                            {"create"|"other": {"limit", "admitted", "throttled", "in_window"}}}}
    DELETE /__faults/throttle            off (the default)
    POST /__faults/throttle/reset        zero the counters and windows, keep the settings

Only method, path and status are logged: bodies and query strings carry secrets and tokens.

Run: python -m tests.doubles.faults --listen-port P --upstream URL [--upstream-ca CA]
     [--tls-cert C --tls-key K] --name NAME
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from yarl import URL

from tests.doubles.faults_rules import Rule, RuleError, Schedule
from tests.doubles.faults_throttle import THROTTLED_MESSAGE, Throttle
from tests.doubles.identity import PathOnlyAccessLogger

CONTROL = "/__faults"
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Trailers",
        "Transfer-Encoding",
        "Upgrade",
    )
)
LOG = logging.getLogger("faults")


class Proxy:
    """Upstream address, the schedule, and the client session shared by all forwarded requests."""

    def __init__(self, name: str, upstream: URL, upstream_ca: Path | None) -> None:
        self.name = name
        self.upstream = upstream
        self.upstream_ca = upstream_ca
        self.schedule = Schedule()
        self.throttle: Throttle | None = None
        self.session: aiohttp.ClientSession | None = None

    @property
    def upstream_authority(self) -> str:
        port = self.upstream.explicit_port
        return f"{self.upstream.raw_host}:{port}" if port else str(self.upstream.raw_host)


PROXY = web.AppKey("proxy", Proxy)


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, inner: str | None = None
) -> web.Response:
    error: dict[str, object] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return web.json_response({"error": error}, status=status, headers=headers)


def _drop_hop_by_hop(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    named = {token.strip().lower() for key, value in pairs if key.lower() == "connection" for token in value.split(",")}
    return [(k, v) for k, v in pairs if k.lower() not in HOP_BY_HOP and k.lower() not in named]


# --- control API ---------------------------------------------------------------------------------------


async def put_rules(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.read() or b"null")
        request.app[PROXY].schedule.replace(body)
    except (ValueError, RuleError) as exc:
        return _error(400, "BadParameter", str(exc))
    return await get_rules(request)


async def get_rules(request: web.Request) -> web.Response:
    rules = request.app[PROXY].schedule.rules
    return web.json_response({"rules": [rule.report(i) for i, rule in enumerate(rules)]})


async def delete_rules(request: web.Request) -> web.Response:
    request.app[PROXY].schedule.rules = []
    return web.json_response({"rules": []})


async def get_stats(request: web.Request) -> web.Response:
    proxy = request.app[PROXY]
    throttled = proxy.throttle.throttled() if proxy.throttle else 0
    return web.json_response(dict(proxy.schedule.stats(), throttled=throttled))


async def reset_stats(request: web.Request) -> web.Response:
    request.app[PROXY].schedule.reset_stats()
    return await get_stats(request)


def _throttle_report(proxy: Proxy) -> web.Response:
    if proxy.throttle is None:
        return web.json_response({"enabled": False})
    return web.json_response(proxy.throttle.report(time.monotonic()))


async def put_throttle(request: web.Request) -> web.Response:
    proxy = request.app[PROXY]
    try:
        proxy.throttle = Throttle.parse(json.loads(await request.read() or b"null"))
    except (ValueError, RuleError) as exc:
        return _error(400, "BadParameter", str(exc))
    return _throttle_report(proxy)


async def get_throttle(request: web.Request) -> web.Response:
    return _throttle_report(request.app[PROXY])


async def delete_throttle(request: web.Request) -> web.Response:
    request.app[PROXY].throttle = None
    return _throttle_report(request.app[PROXY])


async def reset_throttle(request: web.Request) -> web.Response:
    proxy = request.app[PROXY]
    if proxy.throttle is not None:
        proxy.throttle = Throttle(proxy.throttle.scale, proxy.throttle.window, proxy.throttle.retry_after)
    return _throttle_report(proxy)


async def unknown_control(_: web.Request) -> web.Response:
    return _error(404, "NotFound", "unknown fault-control path")


# --- faults and forwarding ---------------------------------------------------------------------------------


def _reset(request: web.Request) -> None:
    """Drop the connection with a TCP RST (linger 0), so the client sees a reset, not a clean close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _inject(request: web.Request, proxy: Proxy, rule: Rule) -> web.StreamResponse | None:
    """Answer for the rule, or None when the request should still be forwarded (after a delay)."""
    LOG.info("%s inject %s %s %s", proxy.name, rule.action, request.method, request.path)
    if rule.action == "delay":
        await asyncio.sleep(rule.delay_seconds)
        return None
    if rule.action == "reset":
        _reset(request)
        # Nothing can be written any more; aiohttp takes a cancelled handler as a gone client and stays quiet.
        raise asyncio.CancelledError
    status = rule.status or 500
    return _error(status, rule.error_code(), rule.error_message(), rule.retry_after_header(), rule.inner_code)


def _forward_headers(request: web.Request, proxy: Proxy) -> list[tuple[str, str]]:
    skip = {"host", "content-length", "x-forwarded-for"}
    headers = [(k, v) for k, v in _drop_hop_by_hop(list(request.headers.items())) if k.lower() not in skip]
    headers.append(("Host", proxy.upstream_authority))
    if "X-Forwarded-Host" not in request.headers:
        headers.append(("X-Forwarded-Host", request.host))
    if "X-Forwarded-Proto" not in request.headers:
        headers.append(("X-Forwarded-Proto", request.scheme))
    peer = request.remote or ""
    previous = request.headers.get("X-Forwarded-For")
    headers.append(("X-Forwarded-For", f"{previous}, {peer}" if previous else peer))
    return headers


async def forward(request: web.Request) -> web.StreamResponse:
    proxy = request.app[PROXY]
    rule = proxy.schedule.pick(request.method, request.path)
    if rule is not None and not rule.forward_first:
        injected = await _inject(request, proxy, rule)
        if injected is not None:
            return injected
    if proxy.throttle is not None and "Authorization" in request.headers:
        # Key Vault's own limits apply only to what reaches it: after the injected faults, before forwarding.
        # A request without a token only draws the bearer challenge (401), no transaction: not counted.
        throttled = proxy.throttle.admit(request.host, request.method, request.path, time.monotonic())
        if throttled is not None:
            LOG.info("%s throttle %s %s", proxy.name, request.method, request.path)
            return _error(429, "Throttled", THROTTLED_MESSAGE, throttled)
    assert proxy.session is not None
    target = URL(str(proxy.upstream.with_path("").with_query(None)).rstrip("/") + request.raw_path, encoded=True)
    body = await request.read()
    proxy.schedule.forwarded += 1
    try:
        upstream = await proxy.session.request(
            request.method,
            target,
            headers=_forward_headers(request, proxy),
            data=body or None,
            allow_redirects=False,
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        LOG.warning("%s upstream error %s %s: %s", proxy.name, request.method, request.path, type(exc).__name__)
        return _error(502, "BadGateway", f"upstream unreachable: {type(exc).__name__}")
    async with upstream:
        if rule is not None and rule.forward_first:
            # The upstream has acted on the request; the client only learns of the fault: a lost answer.
            await upstream.read()
            lost = await _inject(request, proxy, rule)
            assert lost is not None  # delay rules cannot be forward_first
            return lost
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in _drop_hop_by_hop(list(upstream.headers.items())):
            response.headers.add(key, value)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
    return response


# --- app -----------------------------------------------------------------------------------------------------


def _session_ctx(proxy: Proxy) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(_: web.Application) -> AsyncIterator[None]:
        context = ssl.create_default_context(cafile=str(proxy.upstream_ca) if proxy.upstream_ca else None)
        connector = aiohttp.TCPConnector(ssl=context if proxy.upstream.scheme == "https" else False)
        # Bytes pass through as the upstream encoded them; the client decodes, not the proxy.
        proxy.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("Accept-Encoding", "User-Agent")
        )
        async with proxy.session:
            yield

    return ctx


def create_app(name: str, upstream: str, upstream_ca: Path | None = None) -> web.Application:
    """Build the proxy: control routes first, then everything else is forwarded."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    proxy = Proxy(name, URL(upstream), upstream_ca)
    app[PROXY] = proxy
    app.cleanup_ctx.append(_session_ctx(proxy))
    r = app.router
    r.add_put(CONTROL, put_rules)
    r.add_get(CONTROL, get_rules, allow_head=False)
    r.add_delete(CONTROL, delete_rules)
    r.add_get(f"{CONTROL}/stats", get_stats, allow_head=False)
    r.add_post(f"{CONTROL}/stats/reset", reset_stats)
    r.add_put(f"{CONTROL}/throttle", put_throttle)
    r.add_get(f"{CONTROL}/throttle", get_throttle, allow_head=False)
    r.add_delete(f"{CONTROL}/throttle", delete_throttle)
    r.add_post(f"{CONTROL}/throttle/reset", reset_throttle)
    r.add_route("*", CONTROL + "{tail:(/.*)?}", unknown_control)
    r.add_route("*", "/{tail:.*}", forward)
    return app


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL requests are forwarded to")
    parser.add_argument("--upstream-ca", type=Path, help="CA bundle that verifies an https upstream")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="private key of --tls-cert (PEM)")
    parser.add_argument("--name", required=True, help="label for log lines")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    app = create_app(args.name, args.upstream, args.upstream_ca)
    web.run_app(app, host=args.host, port=args.listen_port, ssl_context=context, access_log_class=PathOnlyAccessLogger)


if __name__ == "__main__":
    main()
