"""Anchor this database to its region; the write guard reads the anchor (residency/guard.py).

The triggers themselves are added to every resident table after each migrate
(``post_migrate``), so tables created later are covered too.
"""

from django.conf import settings
from django.db import migrations


def anchor(apps, schema_editor):
    from residency.guard import create_anchor

    create_anchor(schema_editor.connection, region=settings.REGION)


def unanchor(apps, schema_editor):
    from residency.guard import remove_write_guard

    remove_write_guard(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("residency", "0003_violation_event"),
    ]

    operations = [migrations.RunPython(anchor, unanchor)]
