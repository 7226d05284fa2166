"""Tools nobody on this project wrote, against a real server: the GraphQL over HTTP spec's
audit (graphql-http's auditServer), Apollo Client 4 (persisted queries over GET, the
normalised cache, GraphQLWsLink) and urql's persisted exchange. The npm packages are pinned
in tests/node/package.json and its lockfile and installed with `npm ci` when missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.server import serve
from tests.throwaway import in_ci

pytestmark = pytest.mark.e2e

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """tests/node/node_modules, installed from the lockfile on first use."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        message = "node and npm are needed for the client tests (apt-get install nodejs npm)"
        pytest.fail(message) if in_ci() else pytest.skip(message)
    target = NODE_DIR / "node_modules"
    if not (target / "graphql-http").exists() or not (target / "@apollo" / "client").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True,
                       capture_output=True, timeout=600)
    return target


@pytest.fixture
def backend() -> str:
    """What these clients see does not depend on the database: SQLite only."""
    return "sqlite"


@pytest.fixture
def server(seeded_db, tmp_path, node_modules):
    with serve(seeded_db.url, tmp_path) as running:
        yield running


def run_node(script: str, *args: str, timeout: float = 180) -> dict[str, Any]:
    done = subprocess.run(["node", script, *args], cwd=NODE_DIR, capture_output=True, text=True,
                          timeout=timeout, check=False)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"{script} printed no report:\n{done.stdout}\n{done.stderr}") from None
    report["exit"] = done.returncode
    return report


def test_the_graphql_over_http_audit_finds_nothing_to_fix(server):
    report = run_node("audit.mjs", "--url", f"{server.url}/graphql")
    problems = [r for r in report["results"] if r["status"] != "ok"]
    assert problems == [], json.dumps(problems, indent=2)
    assert report["summary"]["error"] == 0 and report["summary"]["warn"] == 0
    assert report["summary"]["ok"] >= 60  # the audit really ran: graphql-http 1.23 has 61
    assert report["exit"] == 0


def test_apollo_client_persisted_queries_cache_and_subscriptions(server):
    report = run_node("apollo.mjs", "--url", f"{server.url}/graphql")
    assert report["exit"] == 0, report.get("error")
    # the link sends the hash over GET, is told to send the document (POST), then the hash
    # alone over GET is enough
    assert report["persisted"]["requests"] == ["GET hash 400", "POST query 200", "GET hash 200"]
    assert report["persisted"]["sameData"] and report["persisted"]["edges"] == 3
    hashed_get = [r for r in report["requests"] if r["method"] == "GET" and r["status"] == 200]
    assert hashed_get[0]["etag"]
    assert all(r["contentType"].startswith("application/graphql-response+json")
               for r in report["requests"])
    # the mutation's payload updated the normalised cache: no refetch was needed
    cache = report["cache"]
    assert cache["payloadErrors"] == []
    assert cache["onHandReturned"] == cache["onHandBefore"] + 5
    assert cache["onHandInCache"] == cache["onHandReturned"]
    # a subscription over GraphQLWsLink, authenticated in connection_init
    subscription = report["subscription"]
    assert subscription["errors"] is None
    assert subscription["data"]["stockChanged"]["movement"]["delta"] == 1
    assert subscription["connectionInitHasAuthorization"] is True


def test_urql_persisted_exchange_over_get(server):
    report = run_node("urql.mjs", "--url", f"{server.url}/graphql")
    assert report["exit"] == 0, report.get("error")
    assert report["requests"] == ["GET hash 400", "GET query 200", "GET hash 200"]
    assert report["results"][0]["codes"] == report["results"][1]["codes"]
    assert report["results"][0]["codes"]
