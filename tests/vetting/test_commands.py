import json

import pytest
from django.core.management import CommandError, call_command

from tests.factories import StaffFactory
from vetting.models import Rubric
from vetting.rubric_spec import load_spec

pytestmark = pytest.mark.django_db


def test_load_rubric_stores_the_next_version(rubric, tmp_path):
    staff = StaffFactory.create()
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps(load_spec()))

    call_command("load_rubric", str(path), "--as", staff.email)

    latest = Rubric.objects.filter(specialty=rubric.specialty).latest("version")
    assert (latest.version, latest.created_by_id) == (rubric.version + 1, staff.pk)


def test_load_rubric_refuses_an_invalid_file_and_stores_nothing(rubric, tmp_path):
    staff = StaffFactory.create()
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps({"specialty": "x", "title": "X", "scale": ["a"] * 5, "categories": []}))

    with pytest.raises(CommandError, match="at least one category"):
        call_command("load_rubric", str(path), "--as", staff.email)

    assert not Rubric.objects.filter(specialty="x").exists()
