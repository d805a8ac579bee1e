"""A room member as a process of its own, for tests whose server lives in a network
namespace: joins a room, speaks a recording, writes every message it receives as a
JSON line when told to leave (SIGTERM), and leaves cleanly.

    python -m tests.room_member URL ROOM NAME TARGET_LANG AUDIO.wav OUT.jsonl [--token T]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp

from media_server.ice_addresses import restrict_host_addresses
from tests.rtc_client import CaptionClient, load_pcm48


async def _member(args: argparse.Namespace) -> list[dict[str, Any]]:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    async with aiohttp.ClientSession(headers=headers) as http:
        client = CaptionClient(args.url, http)
        await client.start(load_pcm48(args.audio), args.lead, room=args.room, name=args.name,
                           target_lang=args.target)
        await stop.wait()
        await client.close()
    return [received.message for received in client.received]


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("url", "room", "name", "target", "audio", "out"):
        parser.add_argument(name)
    parser.add_argument("--lead", type=float, default=0.5, help="seconds of silence first")
    parser.add_argument("--token", default="", help="a room token")
    args = parser.parse_args()
    restrict_host_addresses(["127.0.0.1"])
    messages = asyncio.run(_member(args))
    Path(args.out).write_text("".join(json.dumps(m) + "\n" for m in messages))


if __name__ == "__main__":
    main()
