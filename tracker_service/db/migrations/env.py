"""Alembic environment: the URL comes from the caller (tracker migrate / serve), never a file."""

from alembic import context
from sqlalchemy import create_engine, pool, text

from tracker_service.db.models import metadata

config = context.config
url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")

# Any fixed number works; it only has to be the same in every tracker process.
MIGRATION_LOCK = 7_466_011


def run_migrations_online() -> None:
    engine = create_engine(str(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Two trackers starting together against one database must not both migrate.
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        try:
            connection.commit()
            context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
