"""The OpenAPI 3.1 document: valid, complete for the routes the API registers, served
without an API key; and text fields that are not valid Unicode are a 400 naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openapi_spec_validator import validate

from gateway.api.routes import openapi_document
from gateway.app import Gateway
from tests.gateway.support import API_KEY, make_config

AUTH = {"Authorization": f"Bearer {API_KEY}"}
METHODS = {"get", "put", "post", "delete", "patch"}


def test_document_is_valid_openapi_3_1() -> None:
    document = json.loads(openapi_document())
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises on any violation of the 3.1 schema


def test_document_lists_exactly_the_routes_the_api_registers(tmp_path: Path) -> None:
    gateway = Gateway(make_config(tmp_path, "http://127.0.0.1:9/mm7"))
    # The document is the REST API under /v1 (the console's HTML pages, the handsets'
    # short links and Kannel's report callback share the listener but are not part of it).
    registered = {
        (route.resource.canonical, route.method.lower())
        for route in gateway.api_app.router.routes()
        if route.resource is not None
        and route.method.lower() in METHODS
        and route.resource.canonical.startswith("/v1/")
    }
    paths = json.loads(openapi_document())["paths"]
    documented = {
        (path, method) for path, item in paths.items() for method in item if method in METHODS
    }
    assert registered == documented
    assert ("/v1/messages/{id}", "put") in registered  # the comparison saw real routes


def test_error_codes_of_the_readme_are_in_the_document() -> None:
    """Each documented 4xx/5xx response names codes of the README's table."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    text = openapi_document().decode()
    for code in ("queue_full", "idempotency_conflict", "message_in_flight", "payload_too_large"):
        assert f"`{code}`" in readme and f"`{code}`" in text


async def test_document_is_served_without_an_api_key(tmp_path: Path, run_gateway: Any) -> None:
    gw = await run_gateway(make_config(tmp_path, "http://127.0.0.1:9/mm7"))
    async with gw.session.get(gw.api + "/v1/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.read() == openapi_document()
    async with gw.session.get(gw.api + "/v1/inbound") as response:
        assert response.status == 401  # the exemption is only this path


LONE = "\ud800"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": "+12025550123", "text": "hi " + LONE}, "text"),
        ({"to": "+12025550123", "text": "x", "subject": LONE + "s"}, "subject"),
        ({"to": "+12025550123", "text": "x", "client_ref": "r" + LONE}, "client_ref"),
        ({"to": ["+12025550123", LONE]}, "to[1]"),
        ({"to": "+12025550123", "media": [{"data": "AA==", "name": LONE}]}, "media[0].name"),
        ({"to": "+12025550123", "text": "x", LONE: 1}, "\\ud800"),
    ],
)
async def test_lone_surrogates_are_a_400_naming_the_field(
    tmp_path: Path, run_gateway: Any, body: dict[str, Any], field: str
) -> None:
    gw = await run_gateway(make_config(tmp_path, "http://127.0.0.1:9/mm7"))
    # json.dumps escapes a lone surrogate as \ud800, which json.loads turns back into one.
    raw = json.dumps(body)
    assert "\\ud800" in raw
    headers = {**AUTH, "Content-Type": "application/json"}
    async with gw.session.post(gw.api + "/v1/messages", data=raw, headers=headers) as r:
        assert r.status == 400, await r.text()
        error = (await r.json())["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == field
    assert "not valid Unicode" in error["message"]

    # The same in the message field of a form, and in a PUT of an accepted message.
    form = aiohttp.FormData()
    form.add_field("message", raw, content_type="application/json")
    async with gw.session.post(gw.api + "/v1/messages", data=form, headers=AUTH) as r:
        assert r.status == 400
        assert (await r.json())["error"]["field"] == field
    status, created = await gw.submit({"to": "+12025550123", "text": "ok", "send_at": 4102444800})
    assert status == 202, created
    put = {"text": "x" + LONE}
    async with gw.session.put(
        gw.api + f"/v1/messages/{created['id']}", data=json.dumps(put), headers=headers
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"]["field"] == "text"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"to": "+12025550123", "text": "x", "send_at": 1e999}', "send_at"),
        ('{"to": "+12025550123", "text": "x", "send_at": NaN}', "send_at"),
        ('{"to": "+12025550123", "text": "x", "expires_at": -5}', "expires_at"),
        ('{"to": "+12025550123", "text": "x", "send_at": 1' + "0" * 400 + "}", "send_at"),
        ('{"to": "+12025550123", "text": "x", "send_at": "0001-01-01T00:00:00+14:00"}', "send_at"),
        ('{"to": "+12025550123", "text": "x", "send_at": 1' + "0" * 5000 + "}", None),
        # Found by tests/reliability/test_api_fuzz.py: a non-string part name was a 500.
        ('{"to": "+12025550123", "media": [{"part": {}}]}', "media[0].part"),
        ('{"to": "+12025550123", "media": [{"data": "AA==", "name": [1]}]}', "media[0].name"),
    ],
)
async def test_impossible_times_huge_numbers_and_wrong_types_are_a_400(
    tmp_path: Path, run_gateway: Any, raw: str, field: str | None
) -> None:
    gw = await run_gateway(make_config(tmp_path, "http://127.0.0.1:9/mm7"))
    headers = {**AUTH, "Content-Type": "application/json"}
    async with gw.session.post(gw.api + "/v1/messages", data=raw, headers=headers) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["field"] == field
