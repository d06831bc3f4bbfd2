from payments.models import PayoutAccount


def payouts_enabled(*, engineer_id: int) -> bool:
    return PayoutAccount.objects.filter(engineer_id=engineer_id, payouts_enabled=True).exists()
