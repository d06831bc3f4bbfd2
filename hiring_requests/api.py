from typing import Any

from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from hiring_requests import selectors, services
from hiring_requests.errors import RequestNotFound
from hiring_requests.models import Engagement, HiringRequest, Invitation
from hiring_requests.schemas import (
    AcceptIn,
    DeclineIn,
    EngagementOut,
    HireIn,
    InvitationOut,
    MatchOut,
    RequestDetailOut,
    RequestIn,
    RequestOut,
    RequestPatch,
    ShortlistEntryOut,
    WideningIn,
)
from marketplace.auth import api_auth, current_user
from marketplace.idempotency import accepts_idempotency_key
from marketplace.pagination import each_page
from vetting import selectors as vetting_selectors

router = Router(tags=["requests"], auth=api_auth)


def _own(request: HttpRequest, request_id: int) -> HiringRequest:
    hiring_request = selectors.request_of(client=current_user(request), request_id=request_id)
    if hiring_request is None:
        raise RequestNotFound()
    return hiring_request


def _attach_cards(request: HttpRequest, invitations: list[Invitation]) -> None:
    """Each shortlisted engineer's card, read for the whole page at once."""
    cards = vetting_selectors.engineer_cards(
        viewer=current_user(request), engineer_ids=[invitation.engineer_id for invitation in invitations]
    )
    for invitation in invitations:
        invitation.card = cards.get(invitation.engineer_id)  # type: ignore[attr-defined]


def _detail(hiring_request: HiringRequest) -> dict[str, Any]:
    data = RequestOut.model_validate(hiring_request).model_dump()
    return {**data, "clock": selectors.clock(request=hiring_request)}


# --- engineers: invitations ---------------------------------------------------------


@router.get("/invitations", response=list[InvitationOut], summary="My invitations, newest first (engineers)")
@paginate
def my_invitations(request: HttpRequest) -> Any:
    return selectors.invitations_of(engineer=current_user(request))


@router.post(
    "/invitations/{invitation_id}/accept",
    response=InvitationOut,
    summary="Accept an invitation on its terms, or propose another hourly rate",
)
@accepts_idempotency_key
def invitation_accept(request: HttpRequest, invitation_id: int, payload: AcceptIn | None = None) -> Invitation:
    invitation = services.invitation_accept(
        engineer=current_user(request), invitation_id=invitation_id, rate_minor=payload.rate_minor if payload else None
    )
    return selectors.invitations_of(engineer=current_user(request)).get(pk=invitation.pk)


@router.post(
    "/invitations/{invitation_id}/withdraw", response=InvitationOut, summary="Leave a shortlist, with a reason"
)
@accepts_idempotency_key
def invitation_withdraw(request: HttpRequest, invitation_id: int, payload: DeclineIn) -> Invitation:
    invitation = services.invitation_withdraw(
        engineer=current_user(request), invitation_id=invitation_id, reason=payload.reason
    )
    return selectors.invitations_of(engineer=current_user(request)).get(pk=invitation.pk)


@router.post("/invitations/{invitation_id}/decline", response=InvitationOut, summary="Decline, with a reason")
@accepts_idempotency_key
def invitation_decline(request: HttpRequest, invitation_id: int, payload: DeclineIn) -> Invitation:
    invitation = services.invitation_decline(
        engineer=current_user(request), invitation_id=invitation_id, reason=payload.reason
    )
    return selectors.invitations_of(engineer=current_user(request)).get(pk=invitation.pk)


# --- clients: requests ----------------------------------------------------------------


@router.post("", response={201: RequestDetailOut}, summary="Draft a request (clients)")
@accepts_idempotency_key
def request_create(request: HttpRequest, payload: RequestIn) -> Status[dict[str, Any]]:
    created = services.request_create(client=current_user(request), fields=payload.model_dump())
    return Status(201, _detail(created))


@router.get("", response=list[RequestOut], summary="My requests, newest first")
@paginate
def my_requests(request: HttpRequest) -> Any:
    return selectors.requests_of(client=current_user(request))


@router.get("/{request_id}", response=RequestDetailOut, summary="A request with its clock")
def request_detail(request: HttpRequest, request_id: int) -> dict[str, Any]:
    return _detail(_own(request, request_id))


@router.patch("/{request_id}", response=RequestDetailOut, summary="Edit a draft")
def request_update(request: HttpRequest, request_id: int, payload: RequestPatch) -> dict[str, Any]:
    updated = services.request_update(
        client=current_user(request), request_id=request_id, fields=payload.model_dump(exclude_unset=True)
    )
    return _detail(updated)


@router.post("/{request_id}/raise", response=RequestDetailOut, summary="Raise: start matching and the 8-hour clock")
@accepts_idempotency_key
def request_raise(request: HttpRequest, request_id: int) -> dict[str, Any]:
    return _detail(services.request_raise(client=current_user(request), request_id=request_id))


@router.post("/{request_id}/cancel", response=RequestDetailOut, summary="Cancel a request")
@accepts_idempotency_key
def request_cancel(request: HttpRequest, request_id: int) -> dict[str, Any]:
    return _detail(services.request_cancel(client=current_user(request), request_id=request_id))


@router.post(
    "/{request_id}/widening",
    response=RequestDetailOut,
    summary="Accept or decline the widening proposed when nobody matches",
)
@accepts_idempotency_key
def request_widening(request: HttpRequest, request_id: int, payload: WideningIn) -> dict[str, Any]:
    return _detail(
        services.request_widening_answer(client=current_user(request), request_id=request_id, accept=payload.accept)
    )


@router.post("/{request_id}/close", response=RequestDetailOut, summary="Close a hired request")
@accepts_idempotency_key
def request_close(request: HttpRequest, request_id: int) -> dict[str, Any]:
    return _detail(services.request_close(client=current_user(request), request_id=request_id))


@router.get("/{request_id}/matches", response=list[MatchOut], summary="Who was invited, and why, by wave and rank")
@paginate
def request_matches(request: HttpRequest, request_id: int) -> Any:
    return selectors.matches_of(request=_own(request, request_id))


@router.get("/{request_id}/shortlist", response=list[ShortlistEntryOut], summary="Engineers who accepted, first first")
@each_page(_attach_cards)
@paginate
def request_shortlist(request: HttpRequest, request_id: int) -> Any:
    return selectors.shortlist_of(request=_own(request, request_id))


@router.post("/{request_id}/hire", response={201: EngagementOut}, summary="Hire one engineer from the shortlist")
@accepts_idempotency_key
def request_hire(request: HttpRequest, request_id: int, payload: HireIn) -> Status[Engagement]:
    engagement = services.request_hire(
        client=current_user(request),
        request_id=request_id,
        engineer_id=payload.engineer_id,
        accept_over_budget=payload.accept_over_budget,
    )
    return Status(201, engagement)
