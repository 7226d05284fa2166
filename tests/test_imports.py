"""Imports and exports through the app, on SQLite and PostgreSQL.

Files go up as multipart over REST, jobs are followed over GraphQL, the database is read
directly to prove what changed (and what did not).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from db.models import Category, ImportJob, Item, StockLevel, StockMovement, Warehouse
from tests.conftest import GraphQLClient, _client_for, make_settings

JOB = """query($id: ID!) { importJob(id: $id) { id kind status phase dryRun errorPolicy total
  processed created updated unchanged failed failureReason createdAt startedAt finishedAt
  errors(first: 100) { totalCount edges { node { line column code message } } } } }"""
JOBS = """{ importJobs(first: 50) { totalCount edges { node { id kind status } } } }"""
CANCEL = """mutation($id: ID!) { cancelImport(id: $id) { importJob { status }
  errors { code field message } } }"""
ITEM = """query($sku: String!) { item(sku: $sku) { name unitPrice unitCost reorderPoint archived
  version description category { name parent { name } } } }"""
ROW_LIMIT = 1000

ITEMS_HEADER = "sku,name,description,category,unit_price,unit_cost,reorder_point,archived\n"


@pytest.fixture
async def app(seeded_db, tmp_path):
    settings = make_settings(
        seeded_db.url, upload_dir=str(tmp_path / "up"), max_import_rows=ROW_LIMIT,
        import_batch_rows=50, max_import_bytes=3_000_000, reservation_sweep_seconds=3600,
    )
    async for client in _client_for(settings):
        client.upload_root = tmp_path / "up"
        yield client


def auth(client: GraphQLClient, token: str | None = None) -> dict[str, str]:
    bearer = token or client.token
    return {"Authorization": f"Bearer {bearer}"} if bearer else {}


async def upload(client: GraphQLClient, path: str, content: bytes, token: str | None = None,
                 **params: Any):
    query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
    return await client.http.post(path, params=query, headers=auth(client, token),
                                  files={"file": ("data.csv", content, "text/csv")})


async def finished(client: GraphQLClient, job_id: str, token: str | None = None) -> dict:
    for _ in range(600):
        job = (await client.data(JOB, {"id": job_id}, token=token))["importJob"]
        if job["status"] not in ("QUEUED", "RUNNING"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"import {job_id} did not finish: {job}")


async def run_import(client: GraphQLClient, path: str, content: bytes, **params: Any) -> dict:
    response = await upload(client, path, content, **params)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] in ("QUEUED", "RUNNING") and body["url"] == f"/imports/{body['id']}"
    return await finished(client, body["id"])


def errors_of(job: dict) -> list[tuple[int, str | None, str]]:
    return [(e["node"]["line"], e["node"]["column"], e["node"]["code"])
            for e in job["errors"]["edges"]]


async def scalar(client: GraphQLClient, stmt: Any) -> Any:
    async with client.engine.connect() as connection:
        return (await connection.execute(stmt)).scalar()


async def rows(client: GraphQLClient, stmt: Any) -> list[Any]:
    async with client.engine.connect() as connection:
        return list((await connection.execute(stmt)).all())


async def snapshot(client: GraphQLClient) -> dict[str, Any]:
    """Everything an import could change."""
    return {
        "items": await rows(client, select(Item.sku, Item.name, Item.unit_price, Item.unit_cost,
                                           Item.reorder_point, Item.archived, Item.version,
                                           Item.category_id, Item.updated_at).order_by(Item.id)),
        "categories": await scalar(client, select(func.count()).select_from(Category)),
        "levels": await rows(client, select(StockLevel.id, StockLevel.on_hand,
                                            StockLevel.reserved).order_by(StockLevel.id)),
        "movements": await scalar(client, select(func.count()).select_from(StockMovement)),
    }


async def export(client: GraphQLClient, path: str, token: str | None = None):
    response = await client.http.get(path, headers=auth(client, token))
    assert response.status_code == 200, response.text
    return response


# ---------------------------------------------------------------- round trip


async def test_an_export_reimports_unchanged_with_no_ledger_rows(app):
    # given the seeded catalogue and stock, exported by a manager
    await app.login_as("manager")
    items_csv = (await export(app, "/exports/items.csv")).content
    stock_csv = (await export(app, "/exports/stock.csv")).content
    before = await snapshot(app)
    # when both files are imported again unchanged
    items_job = await run_import(app, "/imports/items", items_csv)
    counts_job = await run_import(app, "/imports/stock-counts", stock_csv)
    # then every row counts as unchanged, and nothing changed: no version, no ledger row
    assert (items_job["status"], items_job["total"], items_job["unchanged"]) == (
        "SUCCEEDED", len(before["items"]), len(before["items"]))
    assert (items_job["created"], items_job["updated"], items_job["failed"]) == (0, 0, 0)
    assert (counts_job["status"], counts_job["total"], counts_job["unchanged"]) == (
        "SUCCEEDED", len(before["levels"]), len(before["levels"]))
    assert (counts_job["created"], counts_job["updated"], counts_job["failed"]) == (0, 0, 0)
    assert await snapshot(app) == before
    # and the JSON Lines exports re-import unchanged too
    items_jsonl = (await export(app, "/exports/items.jsonl")).content
    again = await run_import(app, "/imports/items", items_jsonl)
    assert (again["status"], again["unchanged"]) == ("SUCCEEDED", len(before["items"]))
    assert await snapshot(app) == before


async def test_formula_injection_is_guarded_on_export_and_read_back_on_import(app):
    # given items whose names a spreadsheet would run as formulas (sent as JSON Lines)
    await app.login_as("manager")
    names = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2", "@SUM(A1)", "'quoted",
             "plain"]
    # names lose surrounding blanks; descriptions keep them, tab and CR included
    texts = [*names, "\tTab", "\rReturn"]
    lines = [orjson.dumps({"sku": f"F-{i}", "name": text.strip(), "unit_price": "1.00",
                           "description": text}) for i, text in enumerate(texts)]
    job = await run_import(app, "/imports/items", b"\n".join(lines))
    assert (job["status"], job["created"]) == ("SUCCEEDED", len(texts))
    # when they are exported as CSV
    exported = (await export(app, "/exports/items.csv")).content.decode("utf-8-sig")
    cells = {row["sku"]: row for row in csv.DictReader(io.StringIO(exported, newline=""))}
    # then every dangerous cell starts with the guard's apostrophe, the plain one does not
    for i, text in enumerate(texts):
        expected = text if text == "plain" else "'" + text
        assert cells[f"F-{i}"]["description"] == expected
        if text in names:
            assert cells[f"F-{i}"]["name"] == expected
    # and importing the export changes nothing: the texts read back exactly
    again = await run_import(app, "/imports/items", exported.encode())
    assert (again["status"], again["updated"], again["failed"]) == ("SUCCEEDED", 0, 0)
    for i, text in enumerate(texts):
        item = (await app.data(ITEM, {"sku": f"F-{i}"}))["item"]
        assert (item["name"], item["description"], item["version"]) == (text.strip(), text, 1)


# ---------------------------------------------------------------- per-row errors

LONG_SKU = "S" * 65
MIXED_ITEMS = (
    ITEMS_HEADER
    + 'NEW-1,Widget,"A widget, with a comma",Hardware/Widgets,12.50,7.25,5,false\n'  # 2
    + "SKU-00001,Renamed bolt,,Hardware/Fasteners,1.00,,0,false\n"  # 3 updates
    + "NEW-1,Widget again,,,3.00,,,\n"  # 4 duplicate SKU
    + "NEW-2,Bad price,,,12.345,,,\n"  # 5 three decimals
    + 'NEW-3,"Two-line\nname",,,abc,,,\n'  # 6-7 not an amount, reported on line 6
    + f"{LONG_SKU},Long,,,1,,,\n"  # 8 SKU over 64 characters
    + "NEW-4,Negative,,,1,,-3,\n"  # 9 reorder point below zero
    + "NEW-5,Fine,,,2,,,true\n"  # 10
).encode()
MIXED_ITEM_ERRORS = [
    (4, "sku", "DUPLICATE"),
    (5, "unit_price", "INVALID"),
    (6, "unit_price", "INVALID"),
    (8, "sku", "INVALID"),
    (9, "reorder_point", "INVALID"),
]


async def test_item_rows_fail_with_exact_lines_and_good_rows_go_in(app):
    await app.login_as("manager")
    # when the mixed file is imported with REJECT_FAILED_ROWS
    job = await run_import(app, "/imports/items", MIXED_ITEMS, errorPolicy="REJECT_FAILED_ROWS")
    # then the bad rows are listed by physical line and header column, the rest imported
    assert errors_of(job) == MIXED_ITEM_ERRORS
    assert (job["status"], job["total"], job["processed"]) == ("SUCCEEDED", 8, 8)
    assert (job["created"], job["updated"], job["unchanged"], job["failed"]) == (2, 1, 0, 5)
    duplicate = job["errors"]["edges"][0]["node"]["message"]
    assert duplicate == "SKU NEW-1 appears again: first on line 2"
    widget = (await app.data(ITEM, {"sku": "NEW-1"}))["item"]
    assert widget == {"name": "Widget", "unitPrice": "12.50", "unitCost": "7.25",
                      "reorderPoint": 5, "archived": False, "version": 1,
                      "description": "A widget, with a comma",
                      "category": {"name": "Widgets", "parent": {"name": "Hardware"}}}
    bolt = (await app.data(ITEM, {"sku": "SKU-00001"}))["item"]
    assert (bolt["name"], bolt["unitPrice"], bolt["version"]) == ("Renamed bolt", "1.00", 2)
    assert (await app.data(ITEM, {"sku": "NEW-5"}))["item"]["archived"] is True
    assert (await app.data(ITEM, {"sku": "NEW-2"}))["item"] is None


async def test_reject_everything_applies_nothing_when_a_row_is_bad(app):
    await app.login_as("manager")
    before = await snapshot(app)
    job = await run_import(app, "/imports/items", MIXED_ITEMS)  # the default policy
    assert errors_of(job) == MIXED_ITEM_ERRORS
    assert (job["status"], job["errorPolicy"], job["processed"], job["failed"]) == (
        "FAILED", "REJECT_EVERYTHING", 8, 5)
    assert (job["created"], job["updated"], job["unchanged"]) == (0, 0, 0)
    assert job["failureReason"] == "5 rows failed: under REJECT_EVERYTHING nothing was imported"
    assert await snapshot(app) == before


@pytest.mark.parametrize("policy", ["REJECT_FAILED_ROWS", "REJECT_EVERYTHING"])
async def test_a_dry_run_predicts_and_changes_nothing(app, policy):
    await app.login_as("manager")
    before = await snapshot(app)
    job = await run_import(app, "/imports/items", MIXED_ITEMS, dryRun=True, errorPolicy=policy)
    assert job["dryRun"] is True and errors_of(job) == MIXED_ITEM_ERRORS
    # the counters say what importing would do; only REJECT_EVERYTHING would refuse
    assert (job["created"], job["updated"], job["unchanged"], job["failed"]) == (2, 1, 0, 5)
    if policy == "REJECT_EVERYTHING":
        assert job["status"] == "FAILED"
        assert job["failureReason"].endswith("nothing would be imported")
    else:
        assert (job["status"], job["failureReason"]) == ("SUCCEEDED", None)
    assert await snapshot(app) == before


async def _level(app: GraphQLClient, sku: str, code: str) -> tuple[int, int]:
    stmt = (select(StockLevel.on_hand, StockLevel.reserved)
            .join(Item, Item.id == StockLevel.item_id)
            .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
            .where(Item.sku == sku, Warehouse.code == code))
    (found,) = await rows(app, stmt)
    return found[0], found[1]


MIXED_COUNTS = (
    b"sku,warehouse,counted,reason\n"
    b"SKU-00001,BER-1,1234,Cycle count\n"  # 2
    b"SKU-00002,NOPE-9,5,\n"  # 3 unknown warehouse
    b"SKU-00003,BER-1,-2,\n"  # 4 negative count
    b"SKU-00001,BER-1,41,\n"  # 5 the same level counted twice
    b"NO-SUCH-SKU,HAM-1,3,\n"  # 6 unknown SKU
    b"SKU-00004,HAM-1,0,Emptied\n"  # 7
)
MIXED_COUNT_ERRORS = [
    (3, "warehouse", "NOT_FOUND"),
    (4, "counted", "INVALID"),
    (5, "sku", "DUPLICATE"),
    (6, "sku", "NOT_FOUND"),
]


async def test_count_rows_fail_with_exact_lines_and_good_counts_are_ledger_rows(app):
    await app.login_as("clerk")
    job = await run_import(app, "/imports/stock-counts", MIXED_COUNTS,
                           errorPolicy="REJECT_FAILED_ROWS")
    assert errors_of(job) == MIXED_COUNT_ERRORS
    assert (job["status"], job["kind"], job["total"]) == ("SUCCEEDED", "STOCK_COUNTS", 6)
    assert (job["updated"], job["failed"]) == (2, 4)
    assert await _level(app, "SKU-00001", "BER-1") == (1234, 0)
    assert await _level(app, "SKU-00004", "HAM-1") == (0, 0)
    # one COUNT ledger row per applied row, referencing the job
    pk = int(__import__("base64").b64decode(job["id"]).decode().split(":")[1])
    moves = await rows(app, select(StockMovement.kind, StockMovement.on_hand_after,
                                   StockMovement.reason, StockMovement.reference)
                       .where(StockMovement.reference == f"import:{pk}")
                       .order_by(StockMovement.id))
    assert [(m.kind.value, m.on_hand_after, m.reason) for m in moves] == [
        ("COUNT", 1234, "Cycle count"), ("COUNT", 0, "Emptied")]


async def test_count_rows_under_reject_everything_and_as_a_dry_run_change_nothing(app):
    await app.login_as("clerk")
    before = await snapshot(app)
    rejected = await run_import(app, "/imports/stock-counts", MIXED_COUNTS)
    dry = await run_import(app, "/imports/stock-counts", MIXED_COUNTS, dryRun=True,
                           errorPolicy="REJECT_FAILED_ROWS")
    assert errors_of(rejected) == errors_of(dry) == MIXED_COUNT_ERRORS
    assert (rejected["status"], rejected["updated"], rejected["failed"]) == ("FAILED", 0, 4)
    assert (dry["status"], dry["updated"], dry["failed"]) == ("SUCCEEDED", 2, 4)
    assert await snapshot(app) == before


async def test_counting_below_reserved_fails_that_row(app):
    # given units reserved at a level
    await app.login_as("clerk")
    ids = await app.data("""{ item(sku: "SKU-00005") { id }
      warehouses(first: 1) { edges { node { id code } } } }""")
    warehouse = ids["warehouses"]["edges"][0]["node"]
    await app.data("""mutation($i: ID!, $w: ID!) { setStockCount(input: {itemId: $i,
      warehouseId: $w, counted: 10}) { errors { code } } }""",
                   {"i": ids["item"]["id"], "w": warehouse["id"]})
    await app.data("""mutation($i: ID!, $w: ID!) { reserveStock(input: {itemId: $i,
      warehouseId: $w, quantity: 4}) { errors { code } } }""",
                   {"i": ids["item"]["id"], "w": warehouse["id"]})
    # when a count file counts it below what is reserved
    content = f"sku,warehouse,counted\nSKU-00005,{warehouse['code']},3\n".encode()
    dry = await run_import(app, "/imports/stock-counts", content, dryRun=True)
    real = await run_import(app, "/imports/stock-counts", content,
                            errorPolicy="REJECT_FAILED_ROWS")
    # then the check foresees it and the import refuses it, naming the column
    assert errors_of(dry) == errors_of(real) == [(2, "counted", "INSUFFICIENT_STOCK")]
    assert await _level(app, "SKU-00005", warehouse["code"]) == (10, 4)


# ---------------------------------------------------------------- hostile files


def _offset(content: bytes, marker: bytes) -> int:
    return content.index(marker)


INVALID_UTF8 = b"sku,name,unit_price\nA,caf\xe9,1\n"
NUL = b"sku,name,unit_price\nA,B\x00C,1\n"
TEN_THOUSAND = ("sku,name,unit_price," + ",".join(f"c{i}" for i in range(9_997)) + "\n"
                + "A,B,1" + "," * 9_997 + "\n").encode()


@pytest.mark.parametrize(
    ("content", "status", "detail", "extra"),
    [
        (b"", 422, "The file is empty", {}),
        (b"\xef\xbb\xbf\r\nsku,name,unit_price\r\n", 422, "The first line is empty", {}),
        (b"\xef\xbb\xbf \t", 422, "The file is empty", {}),
        (b"sku,name,unit_price\r\n", 422, "header row but no data rows", {}),
        (b"sku,name,unit_price\n,,\n\n", 422, "header row but no data rows", {}),
        (INVALID_UTF8, 415, "Invalid UTF-8 (byte 0xE9)",
         {"byteOffset": _offset(INVALID_UTF8, b"\xe9"), "line": 2}),
        (NUL, 415, "A NUL byte", {"byteOffset": _offset(NUL, b"\x00"), "line": 2}),
        ("sku,name,unit_price\nA,B,1\n".encode("utf-16"), 415, "The file is UTF-16",
         {"byteOffset": 0}),
        (b"sku,name,unit_price\nA,\xe2\x82", 415, "ends inside a UTF-8 sequence", {}),
        (b"sku,name\nA,B\n", 422, "missing column unit_price", {"missing": ["unit_price"]}),
        (b"sku;name;unit_price;colour\nA;B;1;red\n", 422, "unknown column colour",
         {"unknown": ["colour"]}),
        (TEN_THOUSAND, 422, "and 9,987 more", {}),
    ],
    ids=["empty", "blank-first-line", "bom-only", "header-only", "header-and-blank-rows",
         "invalid-utf8", "nul", "utf16", "cut-utf8", "missing-column", "unknown-column",
         "10000-columns"],
)
async def test_hostile_files_get_a_clear_answer_at_once_and_leave_nothing(
    app, content, status, detail, extra
):
    await app.login_as("manager")
    response = await upload(app, "/imports/items", content)
    assert response.status_code == status, response.text
    body = response.json()
    assert detail in body["detail"]
    for key, value in extra.items():
        assert body[key] == value, body
    assert await scalar(app, select(func.count()).select_from(ImportJob)) == 0
    assert [p.name for p in (app.upload_root / "imports").iterdir()] == []


async def test_a_body_over_the_limit_is_cut_off_with_413(app):
    await app.login_as("manager")
    big = ITEMS_HEADER.encode() + b"A,B,,,1,,,\n" * 300_000  # 3.3 MB over the 3 MB limit
    response = await upload(app, "/imports/items", big)
    assert response.status_code == 413
    declared = await app.http.post(
        "/imports/items", content=b"--x\r\n", headers={
            **auth(app), "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(10 * 1024**3)})
    assert declared.status_code == 413
    assert [p.name for p in (app.upload_root / "imports").iterdir()] == []


async def test_a_one_megabyte_field_fails_its_row_only(app):
    await app.login_as("manager")
    content = (ITEMS_HEADER + "BIG-1," + "n" * 1_000_000 + ",,,1,,,\n"
               + "BIG-2,Small,,,1,,,\n").encode()
    job = await run_import(app, "/imports/items", content, errorPolicy="REJECT_FAILED_ROWS")
    assert errors_of(job) == [(2, "name", "INVALID")]
    assert job["errors"]["edges"][0]["node"]["message"] == "Name must be at most 200 characters"
    assert (job["status"], job["created"]) == ("SUCCEEDED", 1)


async def test_a_bomb_of_tiny_rows_past_the_row_limit_fails_before_writing(app):
    await app.login_as("manager")
    before = await snapshot(app)
    content = b"sku,name,unit_price\n" + b"".join(
        f"T-{i},t,1\n".encode() for i in range(ROW_LIMIT * 4))
    job = await run_import(app, "/imports/items", content, errorPolicy="REJECT_FAILED_ROWS")
    assert job["status"] == "FAILED"
    assert job["failureReason"] == f"The file has more than {ROW_LIMIT:,} rows"
    assert await snapshot(app) == before


async def test_nul_and_other_bad_cells_in_json_lines_fail_their_rows(app):
    await app.login_as("manager")
    content = b"\n".join([
        b'{"sku": "J-1", "name": "ok", "unit_price": 1.5, "reorder_point": 3}',
        b'{"sku": "J-2", "name": "nul \\u0000 inside", "unit_price": "1"}',
        b'{"sku": "J-3", "name": "no price"}',
        b'{"sku": "J-4", "name": "bool price", "unit_price": true}',
        b'{"sku": "J-5", "name": "x", "unit_price": "2", "shade": "blue"}',
        b'{"sku": ["J-6"], "name": "x", "unit_price": "2"}',
    ])
    job = await run_import(app, "/imports/items", content, errorPolicy="REJECT_FAILED_ROWS")
    assert errors_of(job) == [(2, "name", "INVALID"), (3, "unit_price", "INVALID"),
                              (4, "unit_price", "INVALID"), (5, "shade", "INVALID"),
                              (6, "sku", "INVALID")]
    item = (await app.data(ITEM, {"sku": "J-1"}))["item"]
    assert (item["unitPrice"], item["reorderPoint"]) == ("1.50", 3)


# ---------------------------------------------------------------- upserts


async def test_upserts_bump_version_on_real_changes_only_and_announce_them(app):
    await app.login_as("manager")
    broker = app.app.state.stockroom.broker
    heard: list[dict] = []

    async def listen(ready: asyncio.Event) -> None:
        async with broker.subscribe("items") as messages:
            ready.set()
            async for message in messages:
                heard.append(message)

    ready = asyncio.Event()
    listener = asyncio.create_task(listen(ready))
    await ready.wait()
    try:
        # a file in the shape spreadsheets in Europe save: BOM, semicolons, decimal commas,
        # CRLF, header names in their own spelling, only some columns
        content = ("\ufeffSKU;Name;Unit Price;Archived\r\n"
                   "SKU-00010;Same name?;5,25;no\r\n"
                   "NEW-X;Brand new;0,99;yes\r\n").encode()
        first = await run_import(app, "/imports/items", content)
        second = await run_import(app, "/imports/items", content + b"NEW-Y;More;1;\r\n")
        await asyncio.sleep(0.1)
    finally:
        listener.cancel()
    assert (first["created"], first["updated"], first["unchanged"]) == (1, 1, 0)
    assert (second["created"], second["updated"], second["unchanged"]) == (1, 0, 2)
    item = (await app.data(ITEM, {"sku": "SKU-00010"}))["item"]
    # columns the file lacks keep their values (the seed gave every item a cost)
    assert (item["name"], item["unitPrice"], item["version"]) == ("Same name?", "5.25", 2)
    assert item["unitCost"] is not None and item["category"] is not None
    new = (await app.data(ITEM, {"sku": "NEW-X"}))["item"]
    assert (new["archived"], new["version"], new["unitCost"], new["reorderPoint"]) == (
        True, 1, None, 0)
    kinds = sorted(m["kind"] for m in heard)
    assert kinds == ["CREATED", "CREATED", "UPDATED"]


async def test_category_paths_are_found_or_created(app):
    await app.login_as("manager")
    categories = await scalar(app, select(func.count()).select_from(Category))
    content = (ITEMS_HEADER
               + "C-1,One,,Hardware/Fasteners,1,,,\n"  # exists
               + "C-2,Two,,Garden/Hoses/Spare\\/parts,1,,,\n"  # three new, one with a slash
               + "C-3,Three,,Garden / Hoses,1,,,\n"  # found, around spaces
               + "C-4,Four,,Garden//x,1,,,\n").encode()  # an empty step
    job = await run_import(app, "/imports/items", content, errorPolicy="REJECT_FAILED_ROWS")
    assert errors_of(job) == [(5, "category", "INVALID")]
    assert await scalar(app, select(func.count()).select_from(Category)) == categories + 3
    two = (await app.data(ITEM, {"sku": "C-2"}))["item"]["category"]
    assert two == {"name": "Spare/parts", "parent": {"name": "Hoses"}}
    three = (await app.data(ITEM, {"sku": "C-3"}))["item"]["category"]
    assert three == {"name": "Hoses", "parent": {"name": "Garden"}}
    exported = (await export(app, "/exports/items.csv")).text
    assert "C-2,Two,,Garden/Hoses/Spare\\/parts," in exported


async def test_the_same_file_by_the_same_user_is_the_same_job(app):
    manager = await app.login_as("manager")
    admin = await app.login("admin@example.com", "admin")
    content = ITEMS_HEADER.encode() + b"D-1,Once,,,1,,,\n"
    first = (await upload(app, "/imports/items", content)).json()
    await finished(app, first["id"])
    again = await upload(app, "/imports/items", content)
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    # a dry run of it, or another user's upload, is a job of its own
    dry = (await upload(app, "/imports/items", content, dryRun=True)).json()
    other = (await upload(app, "/imports/items", content, token=admin)).json()
    assert len({first["id"], dry["id"], other["id"]}) == 3
    await finished(app, dry["id"])
    await finished(app, other["id"], token=admin)
    # a job that failed frees its file: fixing nothing and retrying starts anew
    bad = ITEMS_HEADER.encode() + b"D-2,Bad,,,abc,,,\n"
    failed = (await upload(app, "/imports/items", bad)).json()
    assert (await finished(app, failed["id"]))["status"] == "FAILED"
    retried = (await upload(app, "/imports/items", bad)).json()
    assert retried["id"] != failed["id"]
    await finished(app, retried["id"])
    # the jobs list shows the viewer's own jobs, newest first; ADMIN sees everyone's
    mine = (await app.data(JOBS, token=manager))["importJobs"]
    assert [e["node"]["id"] for e in mine["edges"]] == [
        retried["id"], failed["id"], dry["id"], first["id"]]
    everyone = (await app.data(JOBS, token=admin))["importJobs"]
    assert everyone["totalCount"] == 5


async def test_jobs_are_private_to_their_owner(app):
    await app.login_as("manager")
    job = await run_import(app, "/imports/items", ITEMS_HEADER.encode() + b"P-1,P,,,1,,,\n")
    clerk = await app.login("clerk@example.com", "clerk")
    assert (await app.data(JOB, {"id": job["id"]}, token=clerk))["importJob"] is None
    node = await app.data('query($id: ID!) { node(id: $id) { id } }', {"id": job["id"]},
                          token=clerk)
    assert node["node"] is None
    status = await app.http.get(f"/imports/{job['id']}", headers=auth(app, clerk))
    assert status.status_code == 404
    cancel = await app.data(CANCEL, {"id": job["id"]}, token=clerk)
    assert cancel["cancelImport"]["errors"][0]["code"] == "NOT_FOUND"
    # the owner reads it over REST too, and cannot cancel what has finished
    mine = await app.http.get(f"/imports/{job['id']}", headers=auth(app))
    assert mine.status_code == 200 and mine.json()["created"] == 1
    done = await app.data(CANCEL, {"id": job["id"]})
    assert done["cancelImport"]["errors"] == [
        {"code": "INVALID", "field": ["id"], "message": "The import already finished (SUCCEEDED)"}]
    node = await app.data('query($id: ID!) { node(id: $id) { ... on ImportJob { status } } }',
                          {"id": job["id"]})
    assert node["node"] == {"status": "SUCCEEDED"}


async def test_roles_and_tokens(app):
    content = ITEMS_HEADER.encode() + b"R-1,R,,,1,,,\n"
    assert (await upload(app, "/imports/items", content)).status_code == 401
    clerk = await app.login("clerk@example.com", "clerk")
    viewer = await app.login("viewer@example.com", "viewer")
    assert (await upload(app, "/imports/items", content, token=clerk)).status_code == 403
    counts = b"sku,warehouse,counted\nSKU-00001,BER-1,5\n"
    assert (await upload(app, "/imports/stock-counts", counts, token=viewer)).status_code == 403
    assert (await upload(app, "/imports/stock-counts", counts, token=clerk)).status_code == 202
    bad_policy = await upload(app, "/imports/stock-counts", counts, token=clerk,
                              errorPolicy="SOMETIMES")
    assert bad_policy.status_code == 422
    assert (await app.http.get("/exports/items.csv")).status_code == 401
    forbidden = await app.execute(JOBS, token=viewer)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# ---------------------------------------------------------------- exports


async def test_exports_stream_with_their_columns_and_filters(app):
    clerk = await app.login_as("clerk")
    items = await export(app, "/exports/items.csv")
    assert items.headers["content-type"].startswith("text/csv")
    disposition = items.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="stockroom-items-') and \
        disposition.endswith('.csv"')
    header, *lines = items.content.decode("utf-8-sig").splitlines()
    # a clerk's export has no unit_cost; a manager's has it, in the import's column order
    assert header == "sku,name,description,category,unit_price,reorder_point,archived"
    assert len(lines) == 250
    manager = await app.login("manager@example.com", "manager")
    with_cost = (await export(app, "/exports/items.jsonl", token=manager)).content
    first = json.loads(with_cost.splitlines()[0])
    assert list(first) == ["sku", "name", "description", "category", "unit_price",
                           "unit_cost", "reorder_point", "archived"]
    assert isinstance(first["unit_price"], str) and isinstance(first["archived"], bool)
    # stock: one row per level, optionally one warehouse
    stock = (await export(app, "/exports/stock.csv?warehouse=BER-1", token=clerk)).text
    stock_rows = list(csv.DictReader(io.StringIO(stock.lstrip("\ufeff"))))
    assert len(stock_rows) == 250 and {r["warehouse"] for r in stock_rows} == {"BER-1"}
    row = stock_rows[0]
    assert list(row) == ["sku", "warehouse", "on_hand", "reserved", "available",
                         "reorder_point", "low"]
    assert int(row["available"]) == int(row["on_hand"]) - int(row["reserved"])
    assert row["low"] == ("true" if int(row["available"]) <= int(row["reorder_point"])
                          else "false")
    unknown = await app.http.get("/exports/stock.csv?warehouse=NOPE", headers=auth(app))
    assert unknown.status_code == 404
    # movements: the ledger, filtered by kind and time
    all_moves = await scalar(app, select(func.count()).select_from(StockMovement))
    receipts = await scalar(app, select(func.count()).select_from(StockMovement)
                            .where(StockMovement.kind == "RECEIPT"))
    moves = (await export(app, "/exports/movements.jsonl?kind=RECEIPT")).content.splitlines()
    assert len(moves) == receipts < all_moves
    assert {json.loads(m)["kind"] for m in moves} == {"RECEIPT"}
    both = (await export(app, "/exports/movements.csv?kind=receipt,SHIPMENT")).text
    assert len(both.splitlines()) == all_moves + 1
    future = (await export(app, "/exports/movements.csv?since=2999-01-01T00:00:00Z")).text
    assert future.lstrip("\ufeff").splitlines() == [
        "id,created_at,sku,warehouse,kind,delta,on_hand_after,reserved_after,reason,"
        "reference,actor"]
    bad = await app.http.get("/exports/movements.csv?kind=THEFT", headers=auth(app))
    assert bad.status_code == 422
    assert (await app.http.get("/exports/items.xlsx", headers=auth(app))).status_code == 422
