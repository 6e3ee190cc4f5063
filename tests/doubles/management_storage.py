"""Microsoft.Storage in the local management plane: one storage account whose keys are real.

The account is served by an Azurite blob service of its own, run by this double with
`AZURITE_ACCOUNTS=<account>:<key1>:<key2>`. Azurite reads that variable only from its own environment, so a
regenerated key takes effect by restarting that Azurite with the new pair before `regenerateKey` answers:
afterwards Azurite accepts exactly the two keys `listKeys` returns, as Azure does. The keys persist in
`<state-dir>/keys.json` (mode 0600) so a restarted stack keeps them.

Operations (storage.json of the Microsoft.Storage REST spec): `GET .../storageAccounts/{name}`
(properties with `primaryEndpoints.blob`), `POST .../listKeys`, `POST .../regenerateKey` with
`{"keyName": "key1" | "key2"}`; both answer `{"keys": [{"keyName", "value", "permissions", "creationTime"}]}`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.doubles.management import PLANE, arm_error, check_api_version

# The api-version the pinned azure-mgmt-storage sends (requirements.txt).
API_VERSIONS = ("2026-09-01",)
PREFIX = "/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}"
KEY_NAMES = ("key1", "key2")
READY_SECONDS = 60


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


class TargetAccount:
    """The storage account and the Azurite process that enforces its keys."""

    def __init__(self, account: str, state_dir: Path, azurite_bin: Path, host: str, port: int) -> None:
        self.account, self.state_dir, self.azurite_bin, self.host, self.port = (
            account,
            state_dir,
            azurite_bin,
            host,
            port,
        )
        self.keys_file = state_dir / "keys.json"
        self.keys: dict[str, dict[str, str]] = {}
        self.process: asyncio.subprocess.Process | None = None
        # Regenerations are serialised: each one restarts Azurite with the full pair.
        self.lock = asyncio.Lock()
        self.regenerations = 0

    # --- keys and Azurite ---------------------------------------------------------------------------

    def _load_keys(self) -> None:
        if self.keys_file.is_file():
            self.keys = json.loads(self.keys_file.read_text())
            return
        now = dt.datetime.now(dt.UTC).isoformat()
        self.keys = {name: {"value": new_key(), "creationTime": now} for name in KEY_NAMES}
        self._save_keys()

    def _save_keys(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.keys_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(self.keys))
        tmp.replace(self.keys_file)

    async def _start_azurite(self) -> None:
        pair = ":".join(self.keys[name]["value"] for name in KEY_NAMES)
        env = dict(os.environ, AZURITE_ACCOUNTS=f"{self.account}:{pair}")
        log = (self.state_dir / "azurite.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            str(self.azurite_bin),
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.port),
            "--location",
            str(self.state_dir / "azurite"),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        log.close()
        deadline = asyncio.get_running_loop().time() + READY_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                return
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise RuntimeError(f"Azurite for {self.account} did not start; see {self.state_dir / 'azurite.log'}")

    async def _stop_azurite(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    async def regenerate(self, key_name: str) -> None:
        async with self.lock:
            previous = dict(self.keys[key_name])
            self.keys[key_name] = {"value": new_key(), "creationTime": dt.datetime.now(dt.UTC).isoformat()}
            self._save_keys()
            await self._stop_azurite()
            try:
                await self._start_azurite()
            except RuntimeError:
                self.keys[key_name] = previous
                self._save_keys()
                raise
            self.regenerations += 1

    # --- ARM surface --------------------------------------------------------------------------------

    def _checked(self, request: web.Request) -> web.Response | None:
        info = request.match_info
        problem = request.app[PLANE].check_group(info["sub"], info["group"])
        if problem is not None:
            return problem
        if info["name"] != self.account:
            return arm_error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.Storage/storageAccounts/{info['name']}' under resource group "
                f"'{info['group']}' was not found.",
            )
        return check_api_version(request, API_VERSIONS)

    def _listing(self) -> dict[str, Any]:
        return {
            "keys": [
                {
                    "keyName": name,
                    "value": self.keys[name]["value"],
                    "permissions": "FULL",
                    "creationTime": self.keys[name]["creationTime"],
                }
                for name in KEY_NAMES
            ]
        }

    async def get(self, request: web.Request) -> web.Response:
        problem = self._checked(request)
        if problem is not None:
            return problem
        plane = request.app[PLANE]
        rid = PREFIX.format(sub=plane.subscription_id, group=request.match_info["group"], name=self.account)
        return web.json_response(
            {
                "id": rid,
                "name": self.account,
                "type": "Microsoft.Storage/storageAccounts",
                "location": "local",
                "kind": "StorageV2",
                "sku": {"name": "Standard_LRS", "tier": "Standard"},
                "properties": {
                    "provisioningState": "Succeeded",
                    # Azurite is path-style: the account name is the first path segment.
                    "primaryEndpoints": {"blob": f"http://{self.host}:{self.port}/{self.account}/"},
                    "allowSharedKeyAccess": True,
                },
            }
        )

    async def list_keys(self, request: web.Request) -> web.Response:
        problem = self._checked(request)
        return problem if problem is not None else web.json_response(self._listing())

    async def regenerate_key(self, request: web.Request) -> web.Response:
        problem = self._checked(request)
        if problem is not None:
            return problem
        try:
            body = await request.json()
            key_name = body["keyName"]
        except (ValueError, KeyError, TypeError):
            return arm_error(400, "InvalidRequestContent", "The request content was invalid: keyName is required.")
        if key_name not in KEY_NAMES:
            # kerb1/kerb2 exist only for accounts with Kerberos (AD DS) authentication enabled.
            return arm_error(
                400,
                "InvalidValuesForRequestParameters",
                f"Values for request parameters are invalid: keyName {key_name}.",
            )
        await self.regenerate(key_name)
        return web.json_response(self._listing())

    async def regenerations_count(self, _: web.Request) -> web.Response:
        return web.json_response({"regenerations": self.regenerations})

    # --- wiring -------------------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        app.router.add_get(PREFIX, self.get)
        app.router.add_post(PREFIX + "/listKeys", self.list_keys)
        app.router.add_post(PREFIX + "/regenerateKey", self.regenerate_key)
        app.router.add_get("/__control/storage/regenerations", self.regenerations_count)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)

    async def _on_startup(self, _: web.Application) -> None:
        self._load_keys()
        await self._start_azurite()

    async def _on_cleanup(self, _: web.Application) -> None:
        await self._stop_azurite()
