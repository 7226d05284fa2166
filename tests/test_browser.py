"""GraphiQL in a real headless Chromium, with every outside host unresolvable."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

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
        import httpx

        async with httpx.AsyncClient(base_url=server.url) as http:
            login = await http.post("/graphql", json={"query": LOGIN, "variables": {
                "e": "clerk@example.com", "p": "clerk"}})
            run = over_http(http, login.json()["data"]["login"]["accessToken"])
            [item], [warehouse] = await seeded_ids(run, ["SKU-00001"], ["BER-1"])
            await run(ADJUST, {"input": {"itemId": item, "warehouseId": warehouse, "delta": 1,
                                         "kind": "RECEIPT"}})
    stdout, stderr = node.communicate(timeout=120)
    assert node.returncode == 0, stdout + stderr
    report = json.loads(stdout)
    assert "admin@example.com" in json.dumps(report)
    assert '"delta"' in json.dumps(report).replace('\\"', '"')
