"""Alembic environment: runs on the connection handed over by ``warehouse.schema``."""

from alembic import context

from warehouse.schema import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
