"""What every benchmark section shares: the stack's settings, the bench vaults, a vault client for seeding,
and services built with a transport counter."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.blob.aio import ContainerClient

from bench.counting import TransportCounter
from bench.vaults import BenchVaults
from bench.workload import StackEnv
from secret_rotation.composition import Service, build_service
from secret_rotation.transport import SharedHttp


@dataclass
class Bench:
    env: StackEnv
    vaults: BenchVaults
    seeder: SecretClient  # direct to the bench vault, its own pool: seeding is never counted or timed

    def queue_name(self) -> str:
        return f"bench-{uuid.uuid4().hex[:10]}"

    def vault_client(self, http: SharedHttp, vault_url: str, credential: ManagedIdentityCredential) -> SecretClient:
        return SecretClient(
            vault_url,
            credential,
            api_version=self.env.values["KEYVAULT_API_VERSION"],
            verify_challenge_resource=False,
            retry_total=0,
            transport=http.transport(),
        )

    @contextlib.asynccontextmanager
    async def service(
        self, vault_url: str, counter: TransportCounter | None = None, **settings: str
    ) -> AsyncIterator[Service]:
        http = SharedHttp(self.env.ca, trace_configs=[counter.trace_config()] if counter else ())
        service = build_service(self.env.settings(vault_url, self.queue_name(), **settings), http=http)
        try:
            yield service
        finally:
            await service.close()

    @contextlib.asynccontextmanager
    async def bare_client(self, vault_url: str, counter: TransportCounter | None = None) -> AsyncIterator[SecretClient]:
        """A bare SDK client on a pool of its own, as an application would hold one."""
        http = SharedHttp(self.env.ca, trace_configs=[counter.trace_config()] if counter else ())
        credential = ManagedIdentityCredential(client_id=self.env.values["AZURE_CLIENT_ID"], transport=http.transport())
        client = self.vault_client(http, vault_url, credential)
        try:
            yield client
        finally:
            await client.close()
            await credential.close()
            await http.close()

    @contextlib.asynccontextmanager
    async def bare_locks(self) -> AsyncIterator[ContainerClient]:
        """The lock container with a bare blob client, for the bare twin of the engine's blob lease."""
        from azure.core.exceptions import ResourceExistsError

        client = ContainerClient.from_connection_string(self.env.values["AzureWebJobsStorage"], "bench-locks")
        try:
            with contextlib.suppress(ResourceExistsError):
                await client.create_container()
            yield client
        finally:
            await client.close()


@contextlib.asynccontextmanager
async def open_bench(env: StackEnv, vaults: BenchVaults) -> AsyncIterator[Bench]:
    http = SharedHttp(env.ca)
    credential = ManagedIdentityCredential(client_id=env.values["AZURE_CLIENT_ID"], transport=http.transport())
    bench = Bench(
        env,
        vaults,
        SecretClient(
            vaults.direct,
            credential,
            api_version=env.values["KEYVAULT_API_VERSION"],
            verify_challenge_resource=False,
            transport=http.transport(),
        ),
    )
    try:
        yield bench
    finally:
        await bench.seeder.close()
        await credential.close()
        await http.close()
