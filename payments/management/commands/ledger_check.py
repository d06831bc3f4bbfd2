"""Verify every invariant of the ledger; exit non-zero on any breach (for cron and CI)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from payments.selectors import ledger_problems


class Command(BaseCommand):
    help = "Check that the ledger balances, escrow is never negative, and nothing was paid out twice."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = ledger_problems()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} ledger problem(s)")
        self.stdout.write("Ledger OK: every transaction balances, escrow matches every milestone, no double payout.")
