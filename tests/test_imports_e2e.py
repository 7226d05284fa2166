"""Imports against a real uvicorn server: restarts mid-import, a race with adjustStock,
progress over WebSockets, cancelling, a body that never ends, an export in pieces."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import create_engine
from db.models import ImportJob, ImportStatus, Item, StockLevel, StockMovement, Warehouse
from tests import wsclient
from tests.queries import ADJUST
from tests.server import Server, serve

pytestmark = pytest.mark.e2e

HEADER = b"sku,name,description,category,unit_price,unit_cost,reorder_point,archived\n"
PROGRESS = """subscription($id: ID!) { importProgress(id: $id) { status phase total processed
  created failed } }"""


def items_file(rows: int, prefix: str = "R") -> bytes:
    return HEADER + b"".join(
        f"{prefix}-{i:06d},Item {i},,Bulk/Range {i % 10},{i % 500}.25,,{i % 9},false\n".encode()
        for i in range(rows)
    )


def pk(global_id: str) -> int:
    return int(base64.b64decode(global_id).decode().split(":")[1])


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.token = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def gql(self, query: str, variables: dict | None = None) -> Any:
        response = await self.http.post("/graphql", headers=self.headers,
                                        json={"query": query, "variables": variables or {}})
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    async def login(self, role: str) -> str:
        data = await self.gql('mutation($e: String!, $p: String!) { login(email: $e, '
                              'password: $p) { accessToken } }',
                              {"e": f"{role}@example.com", "p": role})
        self.token = data["login"]["accessToken"]
        return self.token

    async def upload(self, path: str, content: bytes, **params: str) -> dict:
        response = await self.http.post(path, params=params, headers=self.headers,
                                        files={"file": ("f.csv", content, "text/csv")})
        assert response.status_code == 202, response.text
        return response.json()

    async def status(self, job: dict) -> dict:
        response = await self.http.get(job["url"], headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def until(self, job: dict, done: Any, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = await self.status(job)
            if done(status):
                return status
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting on {job}: {status}")

    async def finished(self, job: dict) -> dict:
        return await self.until(job, lambda s: s["status"] not in ("QUEUED", "RUNNING"))


@contextlib.asynccontextmanager
async def client_of(server: Server, role: str):
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        client = Client(http)
        await client.login(role)
        yield client


async def db_rows(url: str, stmt: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(stmt)).all())
    finally:
        await engine.dispose()


async def job_row(url: str, job: dict) -> ImportJob:
    engine = create_engine(url)
    try:
        async with AsyncSession(engine) as session:
            return await session.get_one(ImportJob, pk(job["id"]))
    finally:
        await engine.dispose()


def stop(server: Server, how: str) -> None:
    if how == "kill":
        server.process.kill()  # no shutdown at all: the job is left RUNNING
    else:
        server.process.terminate()
    server.process.wait(30)


@pytest.mark.parametrize("how", ["kill", "term"])
async def test_a_restart_mid_import_resumes_and_applies_every_batch_once(seeded_db, tmp_path,
                                                                          how):
    rows = 6_000
    settings = {"import_batch_rows": "50", "import_stale_seconds": "1",
                "import_poll_seconds": "0.5"}
    # given an import well under way when its server dies
    with serve(seeded_db.url, tmp_path, **settings) as server:
        async with client_of(server, "manager") as client:
            job = await client.upload("/imports/items", items_file(rows))
            await client.until(job, lambda s: s["status"] == "RUNNING" and s["processed"] > 0)
            stop(server, how)
    # then what is stored is exactly its committed batches: no batch half applied
    interrupted = await job_row(seeded_db.url, job)
    stored = await db_rows(seeded_db.url,
                           select(func.count()).select_from(Item).where(Item.sku.like("R-%")))
    assert stored[0][0] == interrupted.committed_rows == interrupted.processed
    assert interrupted.committed_rows % 50 == 0 and interrupted.committed_rows < rows
    # a clean stop hands the job back; a killed process leaves it RUNNING until it goes stale
    expected = ImportStatus.QUEUED if how == "term" else ImportStatus.RUNNING
    assert interrupted.status is expected
    # when the server starts again
    with serve(seeded_db.url, tmp_path, **settings) as server:
        async with client_of(server, "manager") as client:
            done = await client.finished(job)
    # then the job carried on from its last batch and finished, each row applied once
    assert (done["status"], done["total"], done["processed"]) == ("SUCCEEDED", rows, rows)
    assert (done["created"], done["unchanged"], done["failed"]) == (rows, 0, 0)
    versions = await db_rows(seeded_db.url, select(Item.version, func.count())
                             .where(Item.sku.like("R-%")).group_by(Item.version))
    assert versions == [(1, rows)]
    # a killed process was an interruption; a clean stop is not one
    assert (await job_row(seeded_db.url, job)).attempts == (2 if how == "kill" else 1)
    assert list((tmp_path / "uploads" / "imports").iterdir()) == []


async def test_a_job_interrupted_too_often_fails_with_a_reason(seeded_db, tmp_path):
    settings = {"import_batch_rows": "50", "import_stale_seconds": "1"}
    with serve(seeded_db.url, tmp_path, **settings) as server:
        async with client_of(server, "manager") as client:
            job = await client.upload("/imports/items", items_file(3_000, "G"))
            await client.until(job, lambda s: s["processed"] > 0)
            stop(server, "kill")
    # a job that keeps killing its server (three attempts so far)
    engine = create_engine(seeded_db.url)
    try:
        async with engine.begin() as connection:
            await connection.execute(ImportJob.__table__.update().values(attempts=3))
    finally:
        await engine.dispose()
    with serve(seeded_db.url, tmp_path, **settings) as server:
        async with client_of(server, "manager") as client:
            done = await client.finished(job)
    assert done["status"] == "FAILED"
    assert done["failureReason"] == "Interrupted 3 times (server restarts): gave up"


async def test_counts_racing_adjust_stock_keep_the_ledger_gapless(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path, import_batch_rows="4") as server:
        async with client_of(server, "clerk") as client:
            data = await client.gql("""{
              items(first: 20, orderBy: {field: SKU, direction: ASC}) { edges { node { id sku } } }
              warehouses(first: 1) { edges { node { id code } } } }""")
            items = [e["node"] for e in data["items"]["edges"]]
            warehouse = data["warehouses"]["edges"][0]["node"]
            counts = b"sku,warehouse,counted,reason\n" + b"".join(
                f"{item['sku']},{warehouse['code']},500,race\n".encode() for item in items)

            async def receive(n: int) -> None:
                item = items[n % len(items)]
                result = await client.gql(ADJUST, {"input": {
                    "itemId": item["id"], "warehouseId": warehouse["id"], "delta": 1,
                    "kind": "RECEIPT"}})
                assert result["adjustStock"]["errors"] == []

            # when 100 receipts on the same levels race the count import
            job = await client.upload("/imports/stock-counts", counts)
            await asyncio.gather(*(receive(n) for n in range(100)))
            done = await client.finished(job)
    assert (done["status"], done["updated"], done["failed"]) == ("SUCCEEDED", 20, 0)
    moves = await db_rows(seeded_db.url, select(
        Item.sku, StockMovement.kind, StockMovement.delta, StockMovement.on_hand_after,
        StockMovement.reference)
        .join(Item, Item.id == StockMovement.item_id)
        .join(Warehouse, Warehouse.id == StockMovement.warehouse_id)
        .where(Warehouse.code == warehouse["code"], Item.sku.in_([i["sku"] for i in items]))
        .order_by(StockMovement.id))
    levels = dict(await db_rows(seeded_db.url, select(Item.sku, StockLevel.on_hand)
                                .join(Item, Item.id == StockLevel.item_id)
                                .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
                                .where(Warehouse.code == warehouse["code"])))
    ledger: dict[str, list[Any]] = defaultdict(list)
    for move in moves:
        ledger[move.sku].append(move)
    for item in items:
        rows = ledger[item["sku"]]
        # then each level's ledger is gapless from zero: every row follows the one before
        on_hand = 0
        for move in rows:
            on_hand += move.delta
            assert move.on_hand_after == on_hand, (item["sku"], rows)
        assert on_hand == levels[item["sku"]]
        # and it ends where the serial order says: the count, then the receipts after it
        (count_at,) = [i for i, m in enumerate(rows) if m.kind.value == "COUNT"]
        assert rows[count_at].reference == f"import:{pk(job['id'])}"
        after = [m for m in rows[count_at + 1:] if m.kind.value == "RECEIPT"]
        assert levels[item["sku"]] == 500 + len(after)
    # and none of the 100 receipts was lost (the seed's own receipts come before the test's)
    racing = [m for m in moves if m.kind.value == "RECEIPT" and m.reference is None]
    assert len(racing) == 100


async def test_progress_arrives_while_running_and_once_at_the_end(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path, import_batch_rows="50") as server:
        async with client_of(server, "manager") as client:
            job = await client.upload("/imports/items", items_file(5_000, "W"))
            ws = await wsclient.connect(server.ws_url)
            assert (await wsclient.init(ws, client.token))["type"] == "connection_ack"
            await wsclient.subscribe(ws, "p", PROGRESS, {"id": job["id"]})
            seen: list[dict] = []
            while True:
                message = await asyncio.wait_for(wsclient.receive(ws), 30)
                if message["type"] == "complete":
                    break
                assert message["type"] == "next", message
                seen.append(message["payload"]["data"]["importProgress"])
            await ws.close()
    # several updates while it ran, counters only moving forward, the last one final
    assert len(seen) >= 2
    assert [s["processed"] for s in seen] == sorted(s["processed"] for s in seen)
    assert all(s["status"] in ("QUEUED", "RUNNING") for s in seen[:-1])
    assert seen[-1] == {"status": "SUCCEEDED", "phase": "APPLYING", "total": 5_000,
                        "processed": 5_000, "created": 5_000, "failed": 0}


async def test_cancelling_a_running_import_keeps_committed_batches_only(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path, import_batch_rows="25") as server:
        async with client_of(server, "manager") as client:
            job = await client.upload("/imports/items", items_file(5_000, "X"),
                                      errorPolicy="REJECT_FAILED_ROWS")
            await client.until(job, lambda s: s["processed"] > 0)
            cancelled = await client.gql("""mutation($id: ID!) { cancelImport(id: $id) {
              importJob { status failureReason } errors { code } } }""", {"id": job["id"]})
            assert cancelled["cancelImport"] == {
                "importJob": {"status": "CANCELLED", "failureReason": "Cancelled"}, "errors": []}
            await asyncio.sleep(1)  # the runner notices at its next batch and stops
            final = await client.status(job)
            stored = await db_rows(seeded_db.url, select(func.count()).select_from(Item)
                                   .where(Item.sku.like("X-%")))
    assert final["status"] == "CANCELLED" and final["processed"] < 5_000
    assert stored[0][0] == final["processed"] == final["created"]


async def test_a_body_that_never_ends_is_cut_off_at_the_limit(seeded_db, tmp_path):
    limit = 1024 * 1024
    with serve(seeded_db.url, tmp_path, max_import_bytes=str(limit)) as server:
        async with client_of(server, "manager") as client:
            token = client.token
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /imports/items HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b\r\n"
            + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        part = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n\r\n'
                + HEADER)
        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        chunk = b"A,B,,,1,,,\n" * 6000  # 66 KB per chunk, as long as the server reads
        sent = 0
        answer = asyncio.ensure_future(reader.read(4096))
        # up to 10 GB; in fact until the server answers
        while sent < 10 * 1024**3 and not answer.done():
            try:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await asyncio.wait_for(writer.drain(), 5)
            except (ConnectionError, TimeoutError):
                break
            sent += len(chunk)
        head = await asyncio.wait_for(answer, 10)
        writer.close()
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert sent < 20 * limit  # it stopped reading at the limit, not at the end of the body
    assert list((tmp_path / "uploads" / "imports").iterdir()) == []


async def test_an_export_streams_in_pieces(seeded_db, tmp_path):
    from db import exports

    with serve(seeded_db.url, tmp_path) as server:
        async with client_of(server, "manager") as client:
            job = await client.upload("/imports/items", items_file(exports.BATCH * 2, "E"))
            assert (await client.finished(job))["status"] == "SUCCEEDED"
            pieces = []
            # identity: gzip (which the app applies to exports too) would regroup the pieces
            async with client.http.stream("GET", "/exports/items.csv",
                                          headers={**client.headers,
                                                   "Accept-Encoding": "identity"}) as response:
                assert response.status_code == 200
                async for piece in response.aiter_raw():
                    pieces.append(len(piece))
    # more rows than fit one batch arrive as several pieces, none holding the whole export
    assert len(pieces) >= 3
    assert max(pieces) < sum(pieces) / 2
