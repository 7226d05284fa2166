"""Automatic persisted queries (Apollo's APQ protocol) and an optional allow-list."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import orjson
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from schema.cache import LRU
from schema.errors import CodedError

PLACEHOLDER = "query PersistedQueryPlaceholder { __typename }"
_HASH = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def placeholder(operation_name: str | None) -> str:
    """A stand-in document that defines the operation the request names.

    Apollo's link and Relay send ``operationName`` with the bare hash: the stand-in must
    define that operation, or the request fails as "Unknown operation" before the
    persisted-query error can be reported.
    """
    if operation_name is not None and _NAME.match(operation_name):
        return f"query {operation_name} {{ __typename }}"
    return PLACEHOLDER


def sha256(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


class PersistedQueryStore:
    """Registered documents by hash: a bounded APQ cache, or a fixed allow-list."""

    def __init__(self, size: int, allow_list: Mapping[str, str] | None = None) -> None:
        self.cache: LRU[str, str] = LRU(size)
        self.allow_list = dict(allow_list) if allow_list is not None else None

    @classmethod
    def from_file(cls, path: Path, size: int) -> PersistedQueryStore:
        """Load ``{"<sha256>": "<document>", ...}`` or a list of documents (hashed here)."""
        raw = orjson.loads(path.read_bytes())
        documents = raw if isinstance(raw, list) else list(raw.values())
        allowed = {sha256(doc): doc for doc in documents}
        if isinstance(raw, dict):
            for key, doc in raw.items():
                if key != sha256(doc):
                    raise ValueError(f"{path}: hash {key} does not match its document")
        return cls(size, allowed)

    @property
    def only(self) -> bool:
        return self.allow_list is not None

    def lookup(self, digest: str) -> str | None:
        if self.allow_list is not None:
            return self.allow_list.get(digest)
        query: str | None = self.cache.get(digest)
        return query

    def register(self, digest: str, query: str) -> None:
        if self.allow_list is None:
            self.cache.put(digest, query)


class PersistedQueries(SchemaExtension):
    def __init__(self, store: PersistedQueryStore) -> None:
        self.store = store
        self.error: GraphQLError | None = None

    def _resolve(self) -> GraphQLError | None:
        context = self.execution_context
        persisted = (context.operation_extensions or {}).get("persistedQuery")
        if isinstance(persisted, dict):
            digest = persisted.get("sha256Hash")
            if not isinstance(digest, str) or not _HASH.match(digest):
                return CodedError("sha256Hash must be 64 hex digits", "BAD_USER_INPUT")
            if context.query:
                if sha256(context.query) != digest:
                    return CodedError("provided sha does not match query",
                                      "PERSISTED_QUERY_HASH_MISMATCH")
                if self.store.only and self.store.lookup(digest) is None:
                    return CodedError("This operation is not registered",
                                      "PERSISTED_QUERY_NOT_ALLOWED")
                self.store.register(digest, context.query)
                return None
            query = self.store.lookup(digest)
            if query is None:
                return CodedError("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
            context.query = query
            return None
        if self.store.only and (
            not context.query or self.store.lookup(sha256(context.query)) is None
        ):
            return CodedError("Only registered operations are served",
                              "PERSISTED_QUERY_NOT_ALLOWED")
        return None

    def on_operation(self) -> Iterator[None]:
        self.error = self._resolve()
        if self.error is not None:
            # Let parsing pass so the refusal is reported as an ordinary GraphQL error.
            self.execution_context.query = placeholder(self.execution_context.operation_name)
            self.execution_context.graphql_document = None
        yield

    def on_validate(self) -> Iterator[None]:
        if self.error is not None:
            self.execution_context.pre_execution_errors = [self.error]
        yield
