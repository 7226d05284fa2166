"""GraphQL documents shared by the tests."""

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

W1 = """
query W1($first: Int!) {
  items(first: $first) {
    edges { node { sku name unitPrice category { name }
      stockLevels { onHand available warehouse { code } } } }
  }
}
"""

ADJUST = """
mutation Adjust($input: AdjustStockInput!) {
  adjustStock(input: $input) {
    stockLevel { id onHand reserved available }
    movement { id kind delta onHandAfter reservedAfter reason reference actor { email } }
    errors { code field message }
  }
}
"""

IDS = """
{ items(first: 5) { edges { node { id sku } } }
  warehouses(first: 5) { edges { node { id code } } } }
"""
