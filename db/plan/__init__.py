"""The SQL side of planned reads: a neutral fetch tree in, plain rows out.

Nothing here knows GraphQL. `tree` describes what a plan needs (a root and the
relationships below it, by model relationship name); `fetch` runs it as a few batched
statements: the root through the existing list/keyset code, then one statement per
relationship for all parents at once.
"""
