"""Parts of a stored message as JSON (the ``parts_json`` column)."""

from __future__ import annotations

import json

from gateway.store.records import PartRef


def parts_to_json(parts: tuple[PartRef, ...]) -> str:
    return json.dumps(
        [
            {
                "content_type": p.content_type,
                "sha256": p.sha256,
                "size": p.size,
                "content_id": p.content_id,
                "name": p.name,
            }
            for p in parts
        ],
        separators=(",", ":"),
    )


def parts_from_json(raw: str) -> tuple[PartRef, ...]:
    return tuple(
        PartRef(
            content_type=item["content_type"],
            sha256=item["sha256"],
            size=int(item["size"]),
            content_id=item["content_id"],
            name=item.get("name"),
        )
        for item in json.loads(raw)
    )
