"""Idempotency claims move to a Redis lease; the table keeps only stored responses."""

from django.db import migrations, models


def drop_unfinished_claims(apps, schema_editor):
    IdempotencyRecord = apps.get_model("saas", "IdempotencyRecord")
    IdempotencyRecord.objects.filter(response_status__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("saas", "0002_idempotency_record"),
    ]

    operations = [
        migrations.RunPython(drop_unfinished_claims, migrations.RunPython.noop),
        migrations.RemoveField(model_name="idempotencyrecord", name="state"),
        migrations.RemoveField(model_name="idempotencyrecord", name="lease_token"),
        migrations.RemoveField(model_name="idempotencyrecord", name="lease_expires_at"),
        migrations.RemoveField(model_name="idempotencyrecord", name="completed_at"),
        migrations.AlterField(
            model_name="idempotencyrecord",
            name="response_status",
            field=models.PositiveSmallIntegerField(),
        ),
    ]
