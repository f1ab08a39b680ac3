"""The schema's versions, applied by ``gateway db upgrade`` (Alembic).

A change to gateway/db/schema.py comes with a new file in ``versions/``
(``alembic revision`` with this directory as its script location); the
gateway and ``gateway check`` refuse a database whose version is not the
newest here.
"""
