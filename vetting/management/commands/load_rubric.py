"""Add a rubric (or the next version of one) from a JSON file, as a staff member."""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from marketplace.errors import DomainError
from vetting import services


class Command(BaseCommand):
    help = "Store a rubric from a JSON file (the shape of vetting/rubrics/async-python-backend-v1.json)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--as", dest="staff_email", required=True, help="email of the staff member adding it")

    def handle(self, *args: Any, path: Path, staff_email: str, **options: Any) -> None:
        actor = User.objects.filter(email=staff_email.lower(), is_staff=True).first()
        if actor is None:
            raise CommandError(f"no staff member with email {staff_email}")
        try:
            spec = json.loads(path.read_text())
            rubric = services.rubric_create(spec=spec, actor=actor)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(f"Stored {rubric.specialty} version {rubric.version} (id {rubric.pk}).")
