"""GraphiQL in a real headless Chromium, with every outside host unresolvable."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.browser_util import chromium_path, run_headless
from tests.queries import ADJUST, LOGIN, STOCK_DELTAS
from tests.seeded import over_http, seeded_ids
from tests.server import serve
from tests.throwaway import in_ci

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

BROWSER_DIR = Path(__file__).parent / "browser"


def _need_chromium() -> None:
    if chromium_path() is None:
        message = "chromium is not installed (apt-get install chromium)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def server(shared_seeded_db, tmp_path):
    _need_chromium()
    with serve(shared_seeded_db.url, tmp_path) as running:
        yield running


def test_graphiql_renders_offline(server):
    run = run_headless(f"{server.url}/graphql", "--dump-dom", timeout=90)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "graphiql-container" in run.stdout
    assert "graphiql-query-editor" in run.stdout
    assert run.csp_violations == []


def test_swagger_docs_render_offline(server):
    run = run_headless(f"{server.url}/docs", "--dump-dom", timeout=90)
    assert "swagger-ui" in run.stdout
    assert run.csp_violations == []


def _playwright_ready() -> None:
    if (BROWSER_DIR / "node_modules" / "playwright-core").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed for the Playwright test") if in_ci() else pytest.skip("no npm")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, check=True,
                   capture_output=True, timeout=300)


async def _move_stock(url: str) -> None:
    """Receive one unit as the clerk, from outside the browser: a stockChanged event."""
    async with httpx.AsyncClient(base_url=url) as http:
        login = await http.post("/graphql", json={"query": LOGIN, "variables": {
            "e": "clerk@example.com", "p": "clerk"}})
        run = over_http(http, login.json()["data"]["login"]["accessToken"])
        [item], [warehouse] = await seeded_ids(run, ["SKU-00001"], ["BER-1"])
        await run(ADJUST, {"input": {"itemId": item, "warehouseId": warehouse, "delta": 1,
                                     "kind": "RECEIPT"}})


async def _drive(args: list[str], ready: Path, url: str) -> dict:
    """Run run_query.mjs; once its subscription is live, make the event it waits for."""
    # Popen (not run): the browser must keep going while this test fires the mutation.
    node = subprocess.Popen(  # noqa: ASYNC220
        ["node", "run_query.mjs", *args, "--ready-file", str(ready)],
        cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for _ in range(600):
        if await asyncio.to_thread(ready.exists) or node.poll() is not None:
            break
        await asyncio.sleep(0.1)
    if await asyncio.to_thread(ready.exists):
        await _move_stock(url)
    stdout, stderr = node.communicate(timeout=180)
    assert node.returncode == 0, stdout + stderr
    report: dict = json.loads(stdout)
    return report


async def test_type_a_query_run_it_and_see_the_result(server, tmp_path):
    _playwright_ready()
    ready = tmp_path / "subscribed"
    # Popen (not run): the browser must keep going while this test fires the mutation.
    node = subprocess.Popen(  # noqa: ASYNC220
        ["node", "run_query.mjs", "--url", f"{server.url}/graphql",
         "--query", "{ me { email role } }",
         "--subscription", STOCK_DELTAS,
         "--expect", '"delta"', "--ready-file", str(ready), "--timeout", "60000"],
        cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # once the page's subscription is live, move stock from outside the browser
    for _ in range(600):
        if ready.exists() or node.poll() is not None:
            break
        await asyncio.sleep(0.1)
    if ready.exists():
        await _move_stock(server.url)
    stdout, stderr = node.communicate(timeout=120)
    assert node.returncode == 0, stdout + stderr
    report = json.loads(stdout)
    assert "admin@example.com" in json.dumps(report)
    assert '"delta"' in json.dumps(report).replace('\\"', '"')


@pytest.fixture
def short_token_server(seeded_db, tmp_path):
    """Access tokens that live 12 s, so the panel's refresh happens within the test."""
    _need_chromium()
    with serve(seeded_db.url, tmp_path, access_token_ttl="12") as running:
        yield running


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_sign_in_panel_signs_in_refreshes_and_authenticates_everything(
    short_token_server, tmp_path
):
    _playwright_ready()
    # given GraphiQL, signed in from its "Sign in" panel with email and password only
    report = await _drive(
        ["--url", f"{short_token_server.url}/graphql", "--sign-in",
         "--email", "clerk@example.com", "--password", "clerk",
         "--query", "{ me { email role } }",
         "--subscription", "subscription { stockChanged { movement { delta } } }",
         "--expect", '"delta"', "--wait-refresh", "--refresh-wait-ms", "6000",
         "--timeout", "60000"],
        tmp_path / "subscribed", short_token_server.url)
    # then the panel says who is signed in, with which role
    assert report["signIn"] == {"email": "clerk@example.com", "role": "CLERK"}
    # and `me` ran as them, with the panel's token in the Authorization header
    assert report["query"]["data"]["me"] == {"email": "clerk@example.com", "role": "CLERK"}
    assert report["httpAuthorization"] and all(report["httpAuthorization"])
    # and the subscription authenticated in connection_init and received the event
    assert report["wsConnectionInit"]["authorization"].startswith("Bearer ")
    assert report["subscription"]["data"]["stockChanged"]["movement"]["delta"] == 1
    # and the token was refreshed before it expired: after the first one's expiry the
    # query still runs as the clerk
    assert report["refreshRequests"] >= 1
    assert "Refreshed 1 time" in report["panelAfterRefresh"]
    assert report["queryAfterRefresh"]["data"]["me"]["email"] == "clerk@example.com"
    assert report["cspViolations"] == [] and report["pageErrors"] == []
    assert report["externalRequests"] == []


def test_the_sign_in_panel_script_needs_no_eval_and_no_other_host():
    code = (Path(__file__).parent.parent / "api" / "static" / "graphiql-signin.js").read_text()
    for forbidden in ("eval(", "new Function", "http://", "https://", "document.write",
                      "innerHTML"):
        assert forbidden not in code, forbidden
    assert "refreshToken(refreshToken:" in code and "login(email:" in code
