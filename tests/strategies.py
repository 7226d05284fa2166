"""Hypothesis strategies shared by the generated-query tests."""

from __future__ import annotations

from datetime import UTC

from graphql import StringValueNode
from hypothesis import strategies as st

# hypothesis-graphql makes up values only for the built-in scalars; arguments such as
# stockAt(at:) need DateTime ones. Naive and offset-aware instants both occur in clients' hands.
DATETIMES = st.datetimes(timezones=st.none() | st.just(UTC)).map(
    lambda moment: StringValueNode(value=moment.isoformat())
)

CUSTOM_SCALARS = {"DateTime": DATETIMES}
