from django.db import migrations

INDEX = "accounts_engineer_skills_gin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_engineerprofile USING gin (skills)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    """A GIN index so matching's `skills && ...` filter does not scan every engineer (PostgreSQL only)."""

    dependencies = [("accounts", "0002_engineer_utc_offset")]

    operations = [migrations.RunPython(create, drop)]
