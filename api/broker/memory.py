"""In-process broker: one worker, no service needed; rings reach this worker only."""

from __future__ import annotations

from api.broker.base import BrokerBackend


class MemoryBroker(BrokerBackend):
    name = "memory"
