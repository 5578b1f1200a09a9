"""Contract: the sandbox's X responses validate against X's official OpenAPI schema (v2.166).

The spec lives in the ``shared/`` folder next to the repository (``../shared/research/x-openapi``);
CI always has it. Each response is checked against the schema the spec gives for its operation,
status and content type, with ``$ref``s resolved inside the spec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mystery.sandbox import SandboxServer
from mystery.sandbox.params import DECLARED
from tests.sandbox.sandbox_helpers import brand, world_body

SPEC = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "research"
    / "x-openapi"
    / "openapi-v2.166.json"
)
SPEC_URI = "urn:x-openapi-v2.166"
AUTH = {"Authorization": "Bearer token"}


@cache
def _spec() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.fail(
            f"X OpenAPI spec not found at {SPEC.resolve()}: the contract tests need the shared/ "
            "folder beside the repository (../shared/research/x-openapi/openapi-v2.166.json)"
        )
    spec: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return spec


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(_spec(), default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(SPEC_URI, resource)
    return registry


def check(response: requests.Response, path: str, method: str = "get") -> dict[str, Any]:
    """Validate ``response`` against the spec's schema for ``method path`` and its status."""
    operation = _spec()["paths"][path][method]
    declared = (
        operation["responses"].get(str(response.status_code)) or operation["responses"]["default"]
    )
    content_type = response.headers["content-type"].split(";")[0].strip()
    schema = declared["content"][content_type]["schema"]
    body: dict[str, Any] = response.json()
    validator = Draft202012Validator({"$ref": SPEC_URI + schema["$ref"]}, registry=_registry())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method.upper()} {path} {response.status_code}: " + "; ".join(
        f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]
    )
    for post in body.get("data", []) if isinstance(body.get("data"), list) else []:
        if "created_at" in post:  # format is not checked by the validator: check it here
            assert post["created_at"].endswith(".000Z") and len(post["created_at"]) == 24
    return body


@pytest.fixture
def http(world: SandboxServer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(AUTH)
        yield session


FIELDS = {
    "tweet.fields": "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets",
    "expansions": "author_id,referenced_tweets.id",
}


def test_user_lookups_match_the_contract(world: SandboxServer, http: requests.Session) -> None:
    me = check(http.get(f"{world.url}/2/users/me"), "/2/users/me")["data"]
    check(http.get(f"{world.url}/2/users/by/username/Acme"), "/2/users/by/username/{username}")
    check(http.get(f"{world.url}/2/users/by/username/Nobody"), "/2/users/by/username/{username}")
    check(http.get(f"{world.url}/2/users/by", params={"usernames": "Acme,Nobody"}), "/2/users/by")
    check(http.get(f"{world.url}/2/users/{me['id']}"), "/2/users/{id}")


def test_posting_matches_the_contract(world: SandboxServer, http: requests.Session) -> None:
    url = f"{world.url}/2/tweets"
    created = http.post(url, json={"text": "@Acme contract?"})
    assert created.status_code == 201
    check(created, "/2/tweets", "post")
    duplicate = http.post(url, json={"text": "@Acme contract?"})
    assert duplicate.status_code == 403
    check(duplicate, "/2/tweets", "post")
    invalid = http.post(url, json={"text": "x", "reply": {}})
    assert invalid.status_code == 400
    check(invalid, "/2/tweets", "post")
    unauthorised = requests.post(url, json={"text": "no auth"}, timeout=5)
    assert unauthorised.status_code == 401
    check(unauthorised, "/2/tweets", "post")


def test_timelines_and_search_match_the_contract(
    world: SandboxServer, http: requests.Session
) -> None:
    me = http.get(f"{world.url}/2/users/me").json()["data"]["id"]
    mentions = f"{world.url}/2/users/{me}/mentions"
    empty = check(http.get(mentions), "/2/users/{id}/mentions")
    assert empty == {"meta": {"result_count": 0}}
    probes = [
        http.post(f"{world.url}/2/tweets", json={"text": f"@{h} q{i}"}).json()["data"]["id"]
        for i in range(4)
        for h in ("Acme", "Globex")
    ]
    world.world.advance_by(timedelta(days=5))
    page = check(
        http.get(mentions, params={**FIELDS, "max_results": "5"}), "/2/users/{id}/mentions"
    )
    assert page["meta"]["next_token"] and page["includes"]["users"] and page["includes"]["tweets"]
    check(http.get(mentions, params={"max_results": "500"}), "/2/users/{id}/mentions")  # 400
    check(http.get(f"{world.url}/2/users/{me}/tweets", params=FIELDS), "/2/users/{id}/tweets")
    check(http.get(f"{world.url}/2/users/999/mentions"), "/2/users/{id}/mentions")  # unknown user
    search = f"{world.url}/2/tweets/search/recent"
    found = check(
        http.get(search, params={"query": f"conversation_id:{probes[0]}", **FIELDS}),
        "/2/tweets/search/recent",
    )
    assert found["meta"]["result_count"] >= 1
    check(http.get(search, params={"query": "x" * 600}), "/2/tweets/search/recent")  # 400
    check(http.get(f"{world.url}/2/tweets/{probes[0]}", params=FIELDS), "/2/tweets/{id}")
    check(http.get(f"{world.url}/2/tweets", params={"ids": f"{probes[1]},1"}), "/2/tweets")


def test_errors_and_429_match_the_contract(world: SandboxServer, http: requests.Session) -> None:
    me = http.get(f"{world.url}/2/users/me").json()["data"]["id"]
    http.put(
        f"{world.url}/_sandbox/faults", json={}
    )  # wrong method on a control route: ignored here
    for status in (429, 503):
        fault = {"route": "GET /2/users/:id/mentions", "status": status}
        assert http.post(f"{world.url}/_sandbox/faults", json=fault).status_code == 201
        refused = http.get(f"{world.url}/2/users/{me}/mentions")
        assert refused.status_code == status
        check(refused, "/2/users/{id}/mentions")


def test_direct_messages_match_the_contract(sandbox: SandboxServer) -> None:
    acme = brand("Acme", "Acme", dm_share=1, resolve_after=3600)
    body = world_body(acme, brand("Globex", "Globex"))
    assert requests.put(f"{sandbox.url}/_sandbox/world", json=body, timeout=10).status_code == 201
    with requests.Session() as http:
        http.headers.update(AUTH)
        url = f"{sandbox.url}/2/dm_events"
        assert check(http.get(url), "/2/dm_events") == {"meta": {"result_count": 0}}
        for i in range(3):
            http.post(f"{sandbox.url}/2/tweets", json={"text": f"@Acme dm {i}"})
        sandbox.world.advance_by(timedelta(days=2))
        params = {
            "dm_event.fields": "id,text,event_type,created_at,sender_id,dm_conversation_id",
            "event_types": "MessageCreate",
            "expansions": "sender_id",
            "user.fields": "username",
            "max_results": "2",
        }
        page = check(http.get(url, params=params), "/2/dm_events")
        assert page["meta"]["result_count"] == 2 and page["includes"]["users"]
        last = check(
            http.get(url, params={**params, "pagination_token": page["meta"]["next_token"]}),
            "/2/dm_events",
        )
        assert last["meta"] == {"result_count": 1}
        plain = check(http.get(url), "/2/dm_events")["data"][0]  # X's default fields only
        assert sorted(plain) == ["event_type", "id", "text"]
        for bad in ({"max_results": "0"}, {"dm_event.fields": "sender"},
                    {"event_types": "Typing"}, {"pagination_token": "short"}):
            refused = http.get(url, params=bad)
            assert refused.status_code == 400, bad
            check(refused, "/2/dm_events")


# -- what X refuses with 400 ----------------------------------------------------------------


def _spec_of(version: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC.with_name(f"openapi-v{version}.json").read_text("utf-8"))
    return spec


def _declared_in(spec: dict[str, Any], path: str, method: str) -> tuple[set[str], set[str]]:
    """The query parameters of an operation and its ``expansions`` enum, ``$ref``s followed."""

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            found: Any = spec
            for part in node["$ref"].split("/")[1:]:
                found = found[part]
            node = found
        return node

    names, expansions = set(), set()
    for parameter in map(resolve, spec["paths"][path][method].get("parameters", [])):
        if parameter["in"] == "query":
            names.add(parameter["name"])
        if parameter["name"] == "expansions":
            expansions |= set(resolve(resolve(parameter["schema"])["items"])["enum"])
    return names, expansions


def test_the_sandbox_declares_each_routes_parameters_as_both_specs_do() -> None:
    """Both spellings pass (2.166's ``tweet.fields``, 2.167's ``post.fields``), nothing else."""
    specs = [_spec_of("2.166"), _spec_of("2.167")]
    for route, (names, expansions) in DECLARED.items():
        method, template = route.split(" ")
        path = re.sub(r":(\w+)", r"{\1}", template)
        found = [_declared_in(spec, path, method.lower()) for spec in specs]
        assert names == set().union(*(f[0] for f in found)), route
        assert expansions == set().union(*(f[1] for f in found)), route


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("/2/users/{me}/mentions", "max_results=5&cursor=abc", "cursor"),  # unknown
        ("/2/users/{me}/mentions", "tweet.fields=id&tweet.fields=text", "tweet.fields"),  # twice
        ("/2/users/{me}/mentions", "since_id=1&since_id=1", "since_id"),  # twice, same value
        ("/2/users/{me}/mentions", "expansions=author_id,replies", "expansions"),  # not an enum
        ("/2/tweets/search/recent", "query=from%3AAcme&user_id=1", "user_id"),
        ("/2/users/me", "expansions=author_id", "expansions"),  # a posts' expansion on a user
        ("/2/tweets", "ids=1&ids=2", "ids"),  # a list repeated, not comma-joined
        ("/2/dm_events", "since_id=1", "since_id"),  # DMs have no since_id
    ],
)
def test_x_refuses_unknown_and_repeated_parameters_and_unknown_expansions(
    world: SandboxServer, http: requests.Session, path: str, query: str, parameter: str
) -> None:
    me = http.get(f"{world.url}/2/users/me").json()["data"]["id"]
    refused = http.get(f"{world.url}{path.format(me=me)}?{query}")
    assert refused.status_code == 400
    body = check(refused, path.replace("{me}", "{id}"))
    assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    (error,) = body["errors"]
    assert list(error["parameters"]) == [parameter]
    assert "x-rate-limit-reset" in refused.headers


def test_a_query_on_a_post_is_refused_and_nothing_is_posted(
    world: SandboxServer, http: requests.Session
) -> None:
    refused = http.post(f"{world.url}/2/tweets?dry_run=true", json={"text": "@Acme hello"})
    assert refused.status_code == 400
    check(refused, "/2/tweets", "post")
    assert world.ground_truth()["posts"] == []
