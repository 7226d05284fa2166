async def test_items_query(reader_client):
    await reader_client.login_as("viewer")
    data = await reader_client.data("{ items(first: 3) { totalCount edges { node { sku category { name } stockLevels { onHand warehouse { code } } } } } }")
    assert data["items"]["totalCount"] == 250
