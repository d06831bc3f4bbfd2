"""Walk the whole story against a running server (after `make run`), narrating each step."""

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from dev_tools.demo import Story, StoryError


class Command(BaseCommand):
    help = "Vet, raise, match, chat, hire, fund, approve: the whole flow through the API, narrated."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--base-url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
        parser.add_argument("--stripe-base", default=settings.STRIPE_API_BASE)

    def handle(self, *args: Any, base_url: str, stripe_base: str, **options: Any) -> None:
        story = Story(base_url=base_url, stripe_base=stripe_base, say=self.stdout.write)
        try:
            story.run()
        except StoryError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("10. The books")
        call_command("ledger_check", stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("The story is complete."))
