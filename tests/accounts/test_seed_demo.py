import pytest
from django.core.management import call_command

from accounts.models import User
from vetting.selectors import matchable_engineers

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_demo_cast_once_with_vetted_engineers(rubric, capsys):
    call_command("seed_demo")
    call_command("seed_demo")

    assert User.objects.count() == 5
    assert set(matchable_engineers().values_list("email", flat=True)) == {"ada@vetted.test", "linus@vetted.test"}
    assert User.objects.get(email="staff@vetted.test").is_superuser
    assert "client@vetted.test" in capsys.readouterr().out
