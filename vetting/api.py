from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate
from pydantic import BaseModel

from accounts.models import User
from marketplace.auth import api_auth, current_user, staff_user
from marketplace.schemas import NoteIn, ReasonIn
from vetting import selectors, services
from vetting.errors import ApplicationNotFound, CardNotVisible, InvalidInterviewer, RubricNotFound
from vetting.models import Application, ApplicationStatus, Rubric, VettedRecord
from vetting.schemas import (
    ApplicationIn,
    EngineerCardOut,
    InterviewIn,
    MyApplicationOut,
    QueueItemOut,
    RubricDetailOut,
    RubricIn,
    RubricOut,
    ScoresIn,
    StaffApplicationOut,
    VettedStatusOut,
)

router = Router(tags=["vetting"], auth=api_auth)


class QueueFilter(BaseModel):
    status: ApplicationStatus | None = None
    overdue: bool = False


def _staff_application(application_id: int) -> Application:
    application = selectors.application_for_staff(application_id=application_id)
    if application is None:
        raise ApplicationNotFound()
    return application


# --- engineers ----------------------------------------------------------------------


@router.post("/applications", response={201: MyApplicationOut}, summary="Apply for vetting (engineers)")
def application_submit(request: HttpRequest, payload: ApplicationIn) -> Status[Application]:
    application = services.application_submit(
        engineer=current_user(request),
        statement=payload.statement,
        links=[str(link) for link in payload.links],
        specialty=payload.specialty,
    )
    return Status(201, application)


@router.get("/applications/mine", response=list[MyApplicationOut], summary="My applications, newest first")
@paginate
def my_applications(request: HttpRequest) -> Any:
    return selectors.applications_of(engineer=current_user(request)).select_related("rubric")


@router.post("/applications/{application_id}/withdraw", response=MyApplicationOut, summary="Withdraw my application")
def application_withdraw(request: HttpRequest, application_id: int) -> Application:
    return services.application_withdraw(application_id=application_id, engineer=current_user(request))


@router.get("/status", response={200: VettedStatusOut, 204: None}, summary="My current vetted status")
def my_status(request: HttpRequest) -> Any:
    record = selectors.vetted_record_of(engineer=current_user(request))
    return record if record is not None else Status(204, None)


@router.get("/engineers/{engineer_id}/card", response=EngineerCardOut, summary="A vetted engineer's card")
def engineer_card(request: HttpRequest, engineer_id: int) -> dict[str, Any]:
    card = selectors.engineer_card(viewer=current_user(request), engineer_id=engineer_id)
    if card is None:
        raise CardNotVisible()
    return card


# --- staff --------------------------------------------------------------------------


@router.get("/staff/queue", response=list[QueueItemOut], summary="Applications in flight, oldest first (staff)")
@paginate
def staff_queue(request: HttpRequest, filters: Query[QueueFilter]) -> Any:
    staff_user(request)
    return selectors.staff_queue(status=filters.status, overdue_only=filters.overdue)


@router.get("/staff/applications/{application_id}", response=StaffApplicationOut, summary="An application (staff)")
def staff_application(request: HttpRequest, application_id: int) -> Application:
    staff_user(request)
    return _staff_application(application_id)


@router.post("/staff/applications/{application_id}/screen", response=StaffApplicationOut, summary="Start screening")
def staff_screen(request: HttpRequest, application_id: int, payload: NoteIn) -> Application:
    services.application_start_screening(application_id=application_id, actor=staff_user(request), note=payload.note)
    return _staff_application(application_id)


@router.post("/staff/applications/{application_id}/interview", response=StaffApplicationOut, summary="Start interview")
def staff_interview(request: HttpRequest, application_id: int, payload: InterviewIn) -> Application:
    actor = staff_user(request)
    interviewer = None
    if payload.interviewer_id is not None:
        interviewer = User.objects.filter(pk=payload.interviewer_id, is_staff=True, is_active=True).first()
        if interviewer is None:
            raise InvalidInterviewer()
    services.application_start_interview(
        application_id=application_id, actor=actor, interviewer=interviewer, note=payload.note
    )
    return _staff_application(application_id)


@router.put("/staff/applications/{application_id}/scores", response=StaffApplicationOut, summary="Score criteria")
def staff_score(request: HttpRequest, application_id: int, payload: ScoresIn) -> Application:
    services.interview_score(
        application_id=application_id,
        actor=staff_user(request),
        scores=[(item.criterion_id, item.value, item.note) for item in payload.scores],
    )
    return _staff_application(application_id)


@router.post("/staff/applications/{application_id}/approve", response=StaffApplicationOut, summary="Approve")
def staff_approve(request: HttpRequest, application_id: int, payload: NoteIn) -> Application:
    services.application_approve(application_id=application_id, actor=staff_user(request), note=payload.note)
    return _staff_application(application_id)


@router.post("/staff/applications/{application_id}/reject", response=StaffApplicationOut, summary="Reject")
def staff_reject(request: HttpRequest, application_id: int, payload: ReasonIn) -> Application:
    services.application_reject(application_id=application_id, actor=staff_user(request), reason=payload.reason)
    return _staff_application(application_id)


@router.post("/staff/records/{record_id}/revoke", response=VettedStatusOut, summary="Revoke a vetted record")
def staff_revoke(request: HttpRequest, record_id: int, payload: ReasonIn) -> VettedRecord:
    return services.vetted_record_revoke(record_id=record_id, actor=staff_user(request), reason=payload.reason)


@router.get("/staff/rubrics", response=list[RubricOut], summary="Rubrics, every version (staff)")
@paginate
def staff_rubrics(request: HttpRequest) -> Any:
    staff_user(request)
    return selectors.rubrics()


@router.get("/staff/rubrics/{rubric_id}", response=RubricDetailOut, summary="A rubric with its criteria (staff)")
def staff_rubric(request: HttpRequest, rubric_id: int) -> Rubric:
    staff_user(request)
    rubric = selectors.rubric_detail(rubric_id=rubric_id)
    if rubric is None:
        raise RubricNotFound()
    return rubric


@router.post("/staff/rubrics", response={201: RubricOut}, summary="Add a rubric or its next version (staff)")
def staff_rubric_create(request: HttpRequest, payload: RubricIn) -> Status[Rubric]:
    return Status(201, services.rubric_create(spec=payload.model_dump(), actor=staff_user(request)))
