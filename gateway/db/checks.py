"""What ``gateway check`` and the start ask of the database.

Refused: a schema that is missing or not this code's version, a consumer
name that is both in gateway.yaml and in the database, and a plan gone from
gateway.yaml that consumers in the database still name. Unreachable is a
warning: the gateway starts with gateway.yaml's consumers and catches up when
the database answers.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ..config import GatewayConfig
from .engine import DatabaseError, SchemaError, check_schema, hidden, open_engine
from .schema import consumers


def operator_path(config: GatewayConfig) -> str:
    """The config file as the operator named it (workers and the check read a copy)."""
    import os

    return os.environ.get("GATEWAY_CONFIG_ORIGIN") or config.source


def database_problems(config: GatewayConfig, engine: Engine | None = None
                      ) -> tuple[list[str], list[str]]:
    """(problems that refuse the config, warnings) for its ``database:``."""
    if config.database is None:
        return [], []
    own = engine is None
    engine = engine or open_engine(config.database, config.source)
    try:
        check_schema(engine, operator_path(config))
        with engine.connect() as connection:
            clash = sorted(connection.execute(select(consumers.c.name).where(
                consumers.c.name.in_(list(config.consumers)))).scalars()) \
                if config.consumers else []
            orphans: dict[str, list[str]] = {}
            for name, plan in connection.execute(
                    select(consumers.c.name, consumers.c.plan).where(
                        consumers.c.plan.is_not(None)).order_by(consumers.c.name)):
                if plan not in config.plans:
                    orphans.setdefault(plan, []).append(name)
    except SchemaError as error:
        return [f"database: {error}"], []
    except DatabaseError as error:
        return [], [f"database unreachable: {first_line(error)} ({hidden(engine.url)}): "
                    "the gateway starts with gateway.yaml's consumers and takes the "
                    "database's when it answers"]
    finally:
        if own:
            engine.dispose()
    return [f"consumers.{name}: a consumer of this name is also in the database; remove "
            f"one (`gateway consumers remove {name}`, or from this file)" for name in clash] + [
        f"plans: plan {plan!r} is gone from this file but consumers in the database name it: "
        f"{_some(names)}; keep the plan, or move them (`gateway consumers set NAME --plan "
        "OTHER`)" for plan, names in sorted(orphans.items())], []


def _some(names: list[str], shown: int = 10) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def first_line(error: BaseException) -> str:
    """The driver's own message, first line: SQLAlchemy's adds the statement and a link."""
    original = getattr(error, "orig", None) or error
    return (str(original).strip().splitlines() or [type(original).__name__])[0]
