"""Answers made of other answers: transformations and aggregates.

- :mod:`.transform`: a service's ``transform:`` (headers, query, JMESPath bodies).
- :mod:`.aggregate`: an ``aggregates:`` route, its calls on the bounded pool.
- :mod:`.templates`: ``{param}`` and ``{call.field}`` in a call's path, query and body.
"""
