"""Trigram indexes for the orders list's search (order number, customer name, customer e-mail).

The search is a case-insensitive "contains" (``UPPER(col::text) LIKE UPPER('%term%')``), which no
B-tree index can serve: without these, each search reads every order of the account. A GIN
trigram index on exactly that expression lets PostgreSQL find the matching rows directly. pg_trgm
ships with PostgreSQL; the extension and the indexes are PostgreSQL-only, so on SQLite (the
embedded demo) this migration does nothing.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

COLUMNS = {
    "order_number_trgm": "number",
    "order_customer_name_trgm": "customer_name",
    "order_customer_email_trgm": "customer_email",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in COLUMNS.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "orders_order" USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in COLUMNS:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("orders", "0006_threedcart_hold_is_open")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
