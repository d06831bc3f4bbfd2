from typing import Any

from django.apps import AppConfig


def on_vetting_lapsed(sender: Any, *, engineer_id: int, reason: str, **kwargs: Any) -> None:
    from hiring_requests.services import engineer_vetting_lapsed

    engineer_vetting_lapsed(engineer_id=engineer_id, reason=reason)


class HiringRequestsConfig(AppConfig):
    name = "hiring_requests"
    verbose_name = "Hiring requests"

    def ready(self) -> None:
        # The seams vetting reaches hiring_requests by (marketplace/seams.py), so vetting never imports it.
        from hiring_requests.selectors import client_shortlisted
        from marketplace import seams

        seams.vetting_lapsed.connect(on_vetting_lapsed, dispatch_uid="hiring_requests.vetting_lapsed")
        seams.register_client_shortlisted(client_shortlisted)
