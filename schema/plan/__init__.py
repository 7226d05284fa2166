"""Planned reads: compile a query once, fetch in batches, write the response with closures.

`registry` maps each (GraphQL type, field) of the read schema to where its value comes
from; `build` compiles a validated operation into root plans (a neutral fetch tree for
`db.plan` plus output closures from `output`); `cache` keeps compiled plans; `roots` binds a
request's arguments and runs them; `extension` plugs it all into execution. What cannot be
planned raises `Unplannable` and runs through the ordinary resolvers instead.
"""
