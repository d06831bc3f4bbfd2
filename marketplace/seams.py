"""Seams: how an app lower in the layers (docs/architecture.md, "Boundaries") tells or asks one above it.

A lower app never imports a higher one. Where it must reach one anyway, the seam lives here, in the
shared kernel: the lower app sends a signal or calls a hook, and the higher app connects its receiver
or registers its function in its AppConfig.ready().
"""

from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

# Vetting sends it when an engineer's vetting ends (a record is revoked), with `engineer_id` and
# `reason`; hiring_requests takes the engineer off every open offer and shortlist and tells both sides.
# Sent inside vetting's transaction with Signal.send, which runs receivers there and then and lets
# their exceptions through: the withdrawal commits or rolls back with the revocation, as a direct call would.
vetting_lapsed = Signal()

ShortlistedFor = Callable[..., set[int]]
_client_shortlisted: ShortlistedFor | None = None


def register_client_shortlisted(function: ShortlistedFor) -> None:
    """hiring_requests says which engineers a client has on a shortlist (who accepted one of its invitations)."""
    global _client_shortlisted  # noqa: PLW0603 - one registration per process, at ready()
    _client_shortlisted = function


def client_shortlisted(*, client: Any, engineer_ids: Iterable[int]) -> set[int]:
    """Those of `engineer_ids` on one of `client`'s shortlists: vetting shows a client their cards and no others."""
    if _client_shortlisted is None:
        raise ImproperlyConfigured("hiring_requests registers client_shortlisted in its AppConfig.ready()")
    return _client_shortlisted(client=client, engineer_ids=engineer_ids)
