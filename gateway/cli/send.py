"""``mm7-gateway send``: submit an MMS through a running gateway's REST API and follow it."""

from __future__ import annotations

import argparse
import asyncio
import base64
import mimetypes
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp

FINAL = frozenset({"delivered", "read", "failed", "expired", "rejected", "canceled"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, action="append", help="E.164 recipient (repeat)")
    parser.add_argument("--from", dest="sender", help="sender: short code, long code or id")
    parser.add_argument("--subject")
    parser.add_argument("--text")
    parser.add_argument("--media", action="append", type=Path, default=[], help="file (repeat)")
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="gateway API base URL")
    parser.add_argument(
        "--api-key", default=os.environ.get("MM7GW_API_KEY"), help="or MM7GW_API_KEY"
    )
    parser.add_argument("--wait", type=float, default=60.0, help="follow for SECONDS (0: don't)")


def build_body(args: argparse.Namespace) -> dict[str, Any]:
    optional = {"from": args.sender, "subject": args.subject, "text": args.text}
    body: dict[str, Any] = {"to": args.to} | {k: v for k, v in optional.items() if v is not None}
    media = []
    for path in args.media:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        media.append(
            {"content_type": content_type, "data": base64.b64encode(path.read_bytes()).decode()}
        )
    if media:
        body["media"] = media
    return body


async def submit_and_follow(args: argparse.Namespace, body: dict[str, Any]) -> int:
    headers = {"Authorization": f"Bearer {args.api_key}"}
    api = args.api.rstrip("/")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with http.post(f"{api}/v1/messages", json=body, headers=headers) as response:
            resource = await response.json(content_type=None)
            if response.status not in (200, 202):
                error = resource.get("error", {}) if isinstance(resource, dict) else {}
                print(
                    f"error: HTTP {response.status} {error.get('code')}: {error.get('message')}",
                    file=sys.stderr,
                )
                return 1
        print(f"{resource['id']} {resource['status']}")
        last = resource["status"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.wait
        while last not in FINAL and loop.time() < deadline:
            await asyncio.sleep(0.5)
            async with http.get(f"{api}/v1/messages/{resource['id']}", headers=headers) as r:
                resource = await r.json(content_type=None)
            if resource["status"] != last:
                last = resource["status"]
                detail = resource.get("mm7_message_id") or resource.get("last_error") or ""
                print(f"{resource['id']} {last} {detail}".rstrip())
        return 0 if last not in ("failed", "expired", "rejected") else 1


def run(args: argparse.Namespace) -> int:
    if not args.api_key:
        print("error: --api-key (or MM7GW_API_KEY) is required", file=sys.stderr)
        return 2
    try:
        body = build_body(args)
    except OSError as exc:
        print(f"error: cannot read media: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(submit_and_follow(args, body))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        print(f"error: cannot reach the gateway at {args.api}: {exc}", file=sys.stderr)
        return 1
