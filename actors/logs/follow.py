"""Read a JSON-lines file and, optionally, keep following it across truncation and rotation."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

# How often a followed file is checked for new lines, truncation or rotation.
POLL_S = 0.1


async def read_lines(
    path: Path, *, follow: bool, poll_s: float = POLL_S
) -> AsyncGenerator[str, None]:
    """Yield complete lines of `path`; with `follow`, wait for more forever.

    Following survives truncation (the file shrinks: read again from the start) and rotation
    (the path now names another inode: open the new file). A partial last line is held back
    until its newline arrives.
    """
    apath = anyio.Path(path)
    # Polling, not an event: the file is written by another process (the daemon).
    while follow and not await apath.exists():  # noqa: ASYNC110
        await anyio.sleep(poll_s)
    if not await apath.exists():
        return
    while True:
        # anyio's async file, not aiofiles: aiofiles runs on asyncio only, this runs on trio too.
        async with await anyio.open_file(
            path, encoding="utf-8", errors="replace", newline=""
        ) as handle:
            inode = os.fstat(handle.wrapped.fileno()).st_ino
            pending = ""
            while True:
                chunk = await handle.read(64 * 1024)
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split("\n")
                    for line in lines:
                        if line.strip():
                            yield line
                    continue
                if not follow:
                    if pending.strip():
                        yield pending
                    return
                await anyio.sleep(poll_s)
                try:
                    stat = await apath.stat()
                except FileNotFoundError:
                    continue  # mid-rotation: the new file is not there yet
                if stat.st_ino != inode:
                    break  # rotated: reopen the path, which now names the new file
                if stat.st_size < await handle.tell():
                    await handle.seek(0)  # truncated: start over
                    pending = ""
