"""Verify the ledger's invariants and compare the books with Stripe; exit non-zero on any difference."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from payments.errors import PaymentsUnavailable
from payments.selectors import ledger_problems
from payments.services import ledger_compare_with_stripe


class Command(BaseCommand):
    help = (
        "Check that the ledger balances, escrow matches every milestone, nothing was paid out twice, "
        "and Stripe's PaymentIntents, Transfers, Refunds and Disputes agree with our records."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--local-only", action="store_true", help="Skip the comparison with Stripe.")

    def handle(self, *args: Any, local_only: bool = False, **options: Any) -> None:
        problems = ledger_problems()
        if not local_only:
            try:
                problems += ledger_compare_with_stripe()
            except PaymentsUnavailable:
                problems.append("Stripe could not be asked: the books were not compared with Stripe")
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} ledger problem(s)")
        self.stdout.write("Ledger OK: it balances, escrow matches every milestone, and Stripe agrees.")
