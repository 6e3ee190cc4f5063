"""Runs the operator CLI as an operator would: the installed `secret-rotation` console script, in its own
process, against the local stack (`--stack`). Output is echoed so the leak check sees it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(sys.executable).with_name("secret-rotation")


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def run_cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> CliRun:
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "--stack",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await process.communicate(stdin.encode())
    result = CliRun(process.returncode or 0, out.decode(), err.decode())
    print(f"$ secret-rotation {' '.join(args)} -> {result.code}\n{result.out}\n{result.err}")
    return result
