from django.contrib import admin

from payments.models import PayoutAccount


@admin.register(PayoutAccount)
class PayoutAccountAdmin(admin.ModelAdmin[PayoutAccount]):
    list_display = ("engineer", "stripe_account_id", "payouts_enabled", "updated_at")
    list_filter = ("payouts_enabled",)
    search_fields = ("engineer__email",)
    list_select_related = ("engineer",)
