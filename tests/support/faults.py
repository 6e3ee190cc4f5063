"""The control API of the fault-injecting proxies in the local stack (tests/doubles/faults.py)."""

from __future__ import annotations

from typing import Any

import aiohttp


class Faults:
    """The control API of one proxy."""

    def __init__(self, http: aiohttp.ClientSession, control: str) -> None:
        self.http, self.control = http, control

    async def _call(self, method: str, path: str = "", body: Any = None, expect: int = 200) -> Any:
        async with self.http.request(method, self.control + path, json=body) as response:
            assert response.status == expect, await response.text()
            return await response.json()

    async def schedule(self, *rules: dict[str, Any]) -> Any:
        return await self._call("PUT", body={"rules": list(rules)})

    async def clear(self) -> None:
        """No scheduled faults and no throttle mode."""
        await self._call("DELETE")
        await self._call("DELETE", "/throttle")

    async def throttle(self, scale: float, window_seconds: float = 10.0, retry_after: float | str | None = None) -> Any:
        """Key Vault's per-vault limits x scale per window (see tests/doubles/faults.py); returns the report."""
        body = {"scale": scale, "window_seconds": window_seconds, "retry_after": retry_after}
        return await self._call("PUT", "/throttle", body=body)

    async def throttle_report(self) -> dict[str, Any]:
        report: dict[str, Any] = await self._call("GET", "/throttle")
        return report

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = await self._call("GET", "/stats")
        return stats

    async def reset_stats(self) -> None:
        await self._call("POST", "/stats/reset")
