from django.db import migrations

from vetting.rubric_spec import DEFAULT_SPECIALTY, build_rubric, load_spec


def install_default_rubric(apps, schema_editor):
    Rubric = apps.get_model("vetting", "Rubric")
    if Rubric.objects.filter(specialty=DEFAULT_SPECIALTY).exists():
        return
    build_rubric(
        load_spec(DEFAULT_SPECIALTY),
        version=1,
        created_by_id=None,
        rubric_model=Rubric,
        category_model=apps.get_model("vetting", "RubricCategory"),
        criterion_model=apps.get_model("vetting", "Criterion"),
    )


class Migration(migrations.Migration):
    dependencies = [("vetting", "0001_initial")]

    operations = [migrations.RunPython(install_default_rubric, migrations.RunPython.noop)]
