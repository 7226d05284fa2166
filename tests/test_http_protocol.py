"""GraphQL over HTTP as the spec and real clients expect it, against the in-process app:
media types and status codes, persisted queries with operationName, GET caching by ETag, and
gzip. (The spec's own audit and the JavaScript clients run in tests/test_http_clients.py.)"""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

import pytest

from api.compression import gzip_etag
from api.graphql_http import GRAPHQL_RESPONSE_JSON, negotiate
from tests.queries import ADJUST, W1
from tests.seeded import seeded_ids

NEW = GRAPHQL_RESPONSE_JSON
APOLLO_ACCEPT = "application/graphql-response+json,application/json;q=0.9"
PARSE_ERROR = "{"
VALIDATION_ERROR = "{ noSuchField }"
COERCION_ERROR = ("query Coerce($id: ID!) { node(id: $id) { id } }", {"id": None})
ITEMS = "query Items { items(first: 3) { edges { node { sku name } } } }"
BIG = "query Big { items(first: 50) { edges { node { sku name description unitPrice } } } }"


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(digest: str, operation: str | None = None, query: str | None = None,
              ) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1,
                                                             "sha256Hash": digest}}}
    if operation is not None:
        body["operationName"] = operation
    if query is not None:
        body["query"] = query
    return body


def as_params(body: dict[str, Any]) -> dict[str, str]:
    """The query string Apollo's link builds for a GET: JSON-encoded extensions."""
    params = {"extensions": json.dumps(body["extensions"])}
    if "operationName" in body:
        params["operationName"] = body["operationName"]
    return params


@pytest.fixture
def backend() -> str:
    """The HTTP layer does not depend on the database: SQLite only."""
    return "sqlite"


@pytest.fixture
async def viewer(reader_client):
    await reader_client.login_as("viewer")
    return reader_client


def auth(client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token}"}


# --- media types ----------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, "application/json"),
    ("*/*", "application/json"),
    ("application/json", "application/json"),
    (NEW, NEW),
    (APOLLO_ACCEPT, NEW),
    ("application/json, application/graphql-response+json;q=0.5", "application/json"),
    ("application/graphql-response+json;q=0", "application/json"),
    ("application/graphql-response+json, */*;q=0.1", NEW),
    ("text/html", "application/json"),
])
def test_the_response_media_type_follows_accept(accept, chosen):
    assert negotiate(accept) == chosen


async def test_request_errors_are_400_without_data_under_the_new_media_type(reader_client):
    post = reader_client.http.post
    for query, variables in [(PARSE_ERROR, None), (VALIDATION_ERROR, None), COERCION_ERROR]:
        # when a client that prefers the new media type sends a document that cannot run
        response = await post("/graphql", json={"query": query, "variables": variables},
                              headers={"Accept": APOLLO_ACCEPT})
        # then it is a 400 in that media type, with errors and no data entry at all
        assert response.status_code == 400, (query, response.text)
        assert response.headers["content-type"].startswith(NEW)
        body = response.json()
        assert "data" not in body
        assert body["errors"][0]["message"]


async def test_application_json_keeps_200_and_a_null_data_entry(reader_client):
    for query, variables in [(PARSE_ERROR, None), (VALIDATION_ERROR, None), COERCION_ERROR]:
        response = await reader_client.http.post(
            "/graphql", json={"query": query, "variables": variables},
            headers={"Accept": "application/json"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json()["data"] is None
        assert response.json()["errors"]


async def test_field_errors_stay_200_with_data_under_the_new_media_type(reader_client):
    # given no token: `me` resolves to null with an UNAUTHENTICATED error on its path
    response = await reader_client.http.post(
        "/graphql", json={"query": "{ me { email } }"}, headers={"Accept": NEW})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"me": None}
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["errors"][0]["path"] == ["me"]


async def test_malformed_requests_get_a_graphql_error_body_under_the_new_media_type(
    reader_client,
):
    post = reader_client.http.post
    not_json = await post("/graphql", content=b'{"query": ',
                          headers={"content-type": "application/json", "Accept": NEW})
    assert not_json.status_code == 400
    assert not_json.headers["content-type"].startswith(NEW)
    assert not_json.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    unknown = await post("/graphql", json={"query": "query A { __typename }",
                                           "operationName": "B"}, headers={"Accept": NEW})
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["message"] == 'Unknown operation named "B".'
    # application/json clients keep the plain-text answer they had
    legacy = await post("/graphql", content=b'{"query": ',
                        headers={"content-type": "application/json"})
    assert legacy.status_code == 400
    assert legacy.headers["content-type"].startswith("text/plain")


async def test_batches_stay_200_and_each_entry_speaks_for_itself(viewer):
    response = await viewer.http.post(
        "/graphql", headers={**auth(viewer), "Accept": NEW},
        json=[{"query": "{ me { email } }"}, {"query": VALIDATION_ERROR}])
    assert response.status_code == 200
    first, second = response.json()
    assert first["data"]["me"]["email"] == "viewer@example.com"
    assert "data" not in second and second["errors"]


# --- persisted queries with operationName -----------------------------------------------------


@pytest.mark.parametrize("accept", ["application/json", APOLLO_ACCEPT])
async def test_a_persisted_query_named_by_operation_is_found_after_registration(
    viewer, accept
):
    digest = sha(ITEMS)
    headers = {**auth(viewer), "Accept": accept}
    unknown = "0" * 63 + ("1" if accept == APOLLO_ACCEPT else "2")
    # when a client sends only the hash and the operation's name, as Apollo's link does
    for miss in (
        await viewer.http.post("/graphql", json=persisted(unknown, "Items"), headers=headers),
        await viewer.http.get("/graphql", params=as_params(persisted(unknown, "Items")),
                              headers=headers),
    ):
        # then it is told to send the document (not "Unknown operation named")
        assert miss.json()["errors"][0]["message"] == "PersistedQueryNotFound", miss.text
        assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert miss.status_code == (400 if accept == APOLLO_ACCEPT else 200)
    # and once registered over POST, the hash alone runs over GET and POST
    registered = await viewer.http.post("/graphql", json=persisted(digest, "Items", ITEMS),
                                        headers=headers)
    assert registered.status_code == 200
    data = registered.json()["data"]
    assert len(data["items"]["edges"]) == 3
    by_get = await viewer.http.get("/graphql", params=as_params(persisted(digest, "Items")),
                                   headers=headers)
    assert by_get.status_code == 200
    assert by_get.json()["data"] == data
    by_post = await viewer.http.post("/graphql", json=persisted(digest, "Items"),
                                     headers=headers)
    assert by_post.json()["data"] == data


async def test_a_persisted_mutation_is_still_refused_over_get(viewer):
    mutation = "mutation Adjust($input: AdjustStockInput!) { adjustStock(input: $input) " \
               "{ errors { code } } }"
    registered = await viewer.http.post("/graphql", json={
        **persisted(sha(mutation), "Adjust", mutation),
        "variables": {"input": {"itemId": "x", "warehouseId": "y", "delta": 1,
                                "kind": "RECEIPT"}}}, headers=auth(viewer))
    assert registered.status_code == 200
    for accept in ("application/json", NEW):
        refused = await viewer.http.get(
            "/graphql", params=as_params(persisted(sha(mutation), "Adjust")),
            headers={**auth(viewer), "Accept": accept})
        assert refused.status_code in (400, 405), refused.text
        assert "etag" not in refused.headers


async def test_a_persisted_get_with_accept_any_runs_instead_of_opening_graphiql(viewer):
    digest = sha(ITEMS)
    await viewer.http.post("/graphql", json=persisted(digest, "Items", ITEMS),
                           headers=auth(viewer))
    response = await viewer.http.get("/graphql", params=as_params(persisted(digest, "Items")),
                                     headers={**auth(viewer), "Accept": "*/*"})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["data"]["items"]["edges"]
    ide = await viewer.http.get("/graphql", headers={"Accept": "text/html"})
    assert ide.headers["content-type"].startswith("text/html")


# --- GET caching ------------------------------------------------------------------------------


async def test_get_reads_carry_a_strong_etag_and_revalidate_to_304(client):
    await client.login_as("clerk")
    headers = {**auth(client), "Accept-Encoding": "identity"}
    query = "query Level { items(first: 1) { edges { node { id totalOnHand } } } }"
    first = await client.http.get("/graphql", params={"query": query}, headers=headers)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["cache-control"] == "private, no-cache"
    assert "Accept" in first.headers["vary"]
    # when the browser asks again with the tag it holds, nothing is transferred
    again = await client.http.get("/graphql", params={"query": query},
                                  headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    # when the data changed, the tag no longer matches and the new body comes back
    item = first.json()["data"]["items"]["edges"][0]["node"]["id"]  # the row the query reads
    _, [warehouse] = await seeded_ids(client.data, [], ["BER-1"])
    await client.data(ADJUST, {"input": {
        "itemId": item,
        "warehouseId": warehouse,
        "delta": 3, "kind": "RECEIPT"}})
    changed = await client.http.get("/graphql", params={"query": query},
                                    headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    node = changed.json()["data"]["items"]["edges"][0]["node"]
    assert node["totalOnHand"] == first.json()["data"]["items"]["edges"][0]["node"][
        "totalOnHand"] + 3


async def test_posts_and_failed_gets_carry_no_etag(viewer):
    post = await viewer.http.post("/graphql", json={"query": ITEMS}, headers=auth(viewer))
    assert "etag" not in post.headers
    assert "cache-control" not in post.headers
    bad = await viewer.http.get("/graphql", params={"query": VALIDATION_ERROR},
                                headers={**auth(viewer), "Accept": NEW})
    assert bad.status_code == 400
    assert "etag" not in bad.headers


# --- gzip -------------------------------------------------------------------------------------


async def test_large_responses_are_gzipped_when_accepted(viewer):
    body = {"query": W1, "variables": {"first": 100}}
    plain = await viewer.http.post("/graphql", json=body,
                                   headers={**auth(viewer), "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(plain.content) > 10_000
    request = viewer.http.build_request("POST", "/graphql", json=body,
                                        headers={**auth(viewer), "Accept-Encoding": "gzip"})
    zipped = await viewer.http.send(request, stream=True)
    raw = b"".join([chunk async for chunk in zipped.aiter_raw()])
    assert zipped.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["vary"]
    assert len(raw) < len(plain.content) / 4
    assert json.loads(gzip.decompress(raw)) == plain.json()


async def test_small_responses_are_not_compressed(viewer):
    response = await viewer.http.post("/graphql", json={"query": "{ me { email } }"},
                                      headers={**auth(viewer), "Accept-Encoding": "gzip"})
    assert "content-encoding" not in response.headers


async def test_the_gzip_representation_has_its_own_etag_and_revalidates(viewer):
    digest = sha(BIG)
    await viewer.http.post("/graphql", json=persisted(digest, "Big", BIG), headers=auth(viewer))
    params = as_params(persisted(digest, "Big"))
    identity = await viewer.http.get("/graphql", params=params,
                                     headers={**auth(viewer), "Accept-Encoding": "identity"})
    zipped = await viewer.http.get("/graphql", params=params,
                                   headers={**auth(viewer), "Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["etag"] == gzip_etag(identity.headers["etag"])
    assert zipped.headers["etag"] != identity.headers["etag"]
    assert zipped.json() == identity.json()
    # each representation revalidates with its own tag, and the 304 names the tag held
    for encoding, response in (("gzip", zipped), ("identity", identity)):
        again = await viewer.http.get("/graphql", params=params, headers={
            **auth(viewer), "Accept-Encoding": encoding,
            "If-None-Match": response.headers["etag"]})
        assert again.status_code == 304, encoding
        assert again.headers["etag"] == response.headers["etag"]


async def test_static_assets_are_gzipped_and_still_revalidate(reader_client):
    url = "/static/vendor/graphiql/graphiql.min.js"
    first = await reader_client.http.get(url, headers={"Accept-Encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    assert first.headers["etag"].endswith('-gzip"')
    again = await reader_client.http.get(url, headers={"Accept-Encoding": "gzip",
                                                       "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["etag"] == first.headers["etag"]
    # images are already compressed: left alone
    plain = await reader_client.http.get("/static/vendor/swagger-ui/favicon-32x32.png",
                                         headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
