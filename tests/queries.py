"""GraphQL documents shared by the tests and by the benchmark (``bench/`` imports this module).

Documents only, importing nothing: ``tests.conftest`` switches password hashing to the weak
test profile, and the benchmark must measure the production one.
"""

# ---------------------------------------------------------------- the benchmark's workloads

# W1 also drives the statement-count tests, so both measure the same document.
W1 = """
query W1($first: Int!) {
  items(first: $first) {
    edges { node { sku name unitPrice category { name }
      stockLevels { onHand available warehouse { code } } } }
  }
}
"""

W2 = """query W2($id: ID!) { item(id: $id) { sku name unitPrice reorderPoint } }"""

# Nested connections: a page of items under each category, with their levels.
W5 = """
query W5 {
  categories(first: 20) { edges { node { name items(first: 10) { totalCount
    edges { node { sku stockLevels { onHand warehouse { code } } } } } } } }
}
"""

W3 = """mutation W3($input: AdjustStockInput!) {
  adjustStock(input: $input) { stockLevel { onHand available } movement { onHandAfter }
    errors { code message } }
}"""

# W4's subscribers: STOCK_CHANGED's selection and the commit time stamped on the event, from
# which each delivery is timed.
W4_STOCK_CHANGED = """subscription($item: ID, $wh: ID) {
  stockChanged(itemId: $item, warehouseId: $wh) {
    committedAt
    movement { kind delta onHandAfter item { sku } }
    stockLevel { onHand available warehouse { code } } } }"""

# W4's trigger: as little as possible selected, so the delivery times measure the fan-out.
W4_ADJUST = """mutation($input: AdjustStockInput!) {
  adjustStock(input: $input) { stockLevel { onHand } errors { code message } } }"""

# ---------------------------------------------------------------- sessions

# Variables: e (email), p (password). Demo users' passwords are their role names.
LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
  accessToken refreshToken errors { code message } } }"""

ME = "{ me { email } }"

# ---------------------------------------------------------------- reads

ITEMS_PAGE = """
query Items($first: Int, $after: String, $last: Int, $before: String,
            $filter: ItemFilter, $orderBy: ItemOrder) {
  items(first: $first, after: $after, last: $last, before: $before,
        filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id sku name unitPrice totalOnHand totalAvailable lowStock } }
  }
}
"""

# Seeded rows by their natural keys (tests/seeded.py): SKU for items, code for warehouses.
ITEM_ID = """query($sku: String!) { item(sku: $sku) { id } }"""
WAREHOUSE_IDS = """{ warehouses(first: 100) { edges { node { id code } } } }"""

# ---------------------------------------------------------------- writes

ADJUST = """
mutation Adjust($input: AdjustStockInput!) {
  adjustStock(input: $input) {
    stockLevel { id onHand reserved available }
    movement { id kind delta onHandAfter reservedAfter reason reference actor { email } }
    errors { code field message }
  }
}
"""

COUNT = """mutation($input: StockCountInput!) { setStockCount(input: $input) {
  stockLevel { onHand reserved } movement { kind delta onHandAfter } errors { code field } } }"""

TRANSFER = """mutation($input: TransferStockInput!) { transferStock(input: $input) {
  from { onHand } to { onHand } movements { kind delta onHandAfter } errors { code field } } }"""

UPDATE_ITEM = """mutation($id: ID!, $input: UpdateItemInput!, $v: Int) {
  updateItem(id: $id, input: $input, expectedVersion: $v) {
    item { name version description } errors { code field } } }"""

# ---------------------------------------------------------------- subscriptions

STOCK_CHANGED = """subscription($item: ID, $wh: ID) {
  stockChanged(itemId: $item, warehouseId: $wh) {
    movement { kind delta onHandAfter item { sku } }
    stockLevel { onHand available warehouse { code } } } }"""

# The smallest live subscription, for tests that only need one open.
STOCK_DELTAS = "subscription { stockChanged { movement { delta } } }"
