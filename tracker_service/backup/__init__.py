"""A copy of every committed change in an object store (seed 000's "redundant backup"): tasks as
JSON, handoffs as markdown, ID counters, and a journal of events, readable without a tracker.

`objects` says what each object holds and where it lives, `store` talks to the store (fsspec),
`syncer` follows the activity log as an outbox, `restore` rebuilds a tenant from a store.
"""
