"""Outbound webhooks: where they may point (``guard``), one attempt (``sender``) and each
worker's loop that makes and sends deliveries (``dispatcher``)."""
