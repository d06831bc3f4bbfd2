from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

STAFF_GROUP = "Vetting staff"
# What a vetting staff member needs in admin: work applications, read the rest.
STAFF_PERMISSIONS = [
    "view_application",
    "change_application",
    "view_score",
    "change_score",
    "view_applicationevent",
    "view_vettedrecord",
    "change_vettedrecord",
    "view_rubric",
    "view_rubriccategory",
    "view_criterion",
]


def ensure_staff_group(sender: AppConfig, **kwargs: Any) -> None:
    """Keep the "Vetting staff" group's permissions current; permissions exist only after migrate."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=STAFF_GROUP)
    group.permissions.add(*Permission.objects.filter(content_type__app_label="vetting", codename__in=STAFF_PERMISSIONS))


class VettingConfig(AppConfig):
    name = "vetting"
    verbose_name = "Vetting"

    def ready(self) -> None:
        post_migrate.connect(ensure_staff_group, sender=self, dispatch_uid="vetting.ensure_staff_group")
