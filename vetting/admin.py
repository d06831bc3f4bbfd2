"""Where staff vet engineers. Every change goes through vetting.services, as the API's do."""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.models import User
from marketplace.admin import ReadOnlyAdmin, ReadOnlyInline
from marketplace.errors import DomainError
from vetting import selectors, services
from vetting.models import Application, ApplicationEvent, Criterion, Rubric, RubricCategory, Score, VettedRecord


def _age(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24}d {hours % 24}h"


def _actor(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def _run_each(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any], call: Callable[[Any], object]
) -> None:
    """Apply a service to each selected row; report each refusal instead of stopping at the first."""
    done = 0
    for obj in queryset:
        try:
            call(obj)
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.detail}", messages.ERROR)
        else:
            done += 1
    if done:
        modeladmin.message_user(request, f"Done for {done} of {len(queryset)}.", messages.SUCCESS)


@dataclass(frozen=True)
class NotePrompt:
    action: str
    title: str
    label: str
    required: bool
    why: str


def _with_note(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    prompt: NotePrompt,
    call: Callable[[Any, str], object],
) -> HttpResponse | None:
    """First ask for a note or reason on a page of its own; once given, apply `call(obj, note)` to each row."""
    if not request.POST.get("apply"):
        context = {**asdict(prompt), "explanation": prompt.why, "queryset": queryset}
        return TemplateResponse(request, "admin/vetting/action_note.html", context)
    note = request.POST.get("note", "")
    _run_each(modeladmin, request, queryset, lambda obj: call(obj, note))
    return None


class OverdueFilter(admin.SimpleListFilter):
    title = "target time"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            overdue_ids = selectors.staff_queue(overdue_only=True).values("pk")
            return queryset.filter(pk__in=overdue_ids)
        return queryset


class ScoreInline(admin.TabularInline[Score, Application]):
    model = Score
    fields = ("category", "criterion", "weight", "value", "note", "scored_by")
    readonly_fields = ("category", "criterion", "weight", "scored_by")
    extra = 0
    can_delete = False
    verbose_name_plural = "Interview scores (0-4; notes are private to staff)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Score]:
        # The current version of each score; earlier versions stay in the table, read-only history.
        return (
            super().get_queryset(request).filter(superseded_at=None).select_related("criterion__category", "scored_by")
        )

    @admin.display(description="category")
    def category(self, score: Score) -> str:
        return score.criterion.category.name

    @admin.display(description="weight")
    def weight(self, score: Score) -> int:
        return score.criterion.weight


class EventInline(ReadOnlyInline[ApplicationEvent, Application]):
    model = ApplicationEvent
    fields = ("created_at", "from_status", "to_status", "actor", "note")
    verbose_name_plural = "Audit trail"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin[Application]):
    list_display = ("id", "engineer", "status", "age", "in_stage", "overdue", "interviewer", "level")
    list_filter = ("status", OverdueFilter)
    search_fields = ("engineer__email", "engineer__full_name")
    list_select_related = ("engineer", "interviewer")
    ordering = ("submitted_at",)
    inlines = (ScoreInline, EventInline)
    actions = ("start_screening", "start_interview", "approve", "reject")
    readonly_fields = (
        "engineer",
        "rubric",
        "status",
        "headline",
        "skills",
        "links",
        "statement",
        "submitted_at",
        "stage_entered_at",
        "interviewer",
        "decided_at",
        "decided_by",
        "decision_reason",
        "score_bp",
        "level",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="age")
    def age(self, application: Application) -> str:
        return _age(timezone.now() - application.submitted_at)

    @admin.display(description="in stage")
    def in_stage(self, application: Application) -> str:
        return _age(timezone.now() - application.stage_entered_at)

    @admin.display(description="overdue", boolean=True)
    def overdue(self, application: Application) -> bool:
        now = timezone.now()
        if application.status == "submitted" and now > selectors.screening_due(application):
            return True
        return application.status in ("submitted", "screening", "interview") and now > selectors.decision_due(
            application
        )

    def save_model(self, request: HttpRequest, obj: Application, form: Any, change: bool) -> None:
        """Nothing on the application itself is edited here; stages move through the actions."""

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Scores are saved by `interview_score`, never by the formset itself."""
        # The admin's change message reads these, which formset.save() would have set.
        formset.new_objects, formset.deleted_objects, formset.changed_objects = [], [], []
        if formset.model is not Score:
            return
        changed = [f for f in formset.forms if f.has_changed() and f.cleaned_data.get("value") is not None]
        scores = [(f.instance.criterion_id, f.cleaned_data["value"], f.cleaned_data.get("note", "")) for f in changed]
        if not scores:
            return
        try:
            services.interview_score(application_id=form.instance.pk, actor=_actor(request), scores=scores)
        except DomainError as exc:
            self.message_user(request, f"Scores not saved: {exc.detail}", messages.ERROR)
        else:
            formset.changed_objects = [(f.instance, f.changed_data) for f in changed]

    @admin.action(description="Start screening")
    def start_screening(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda a: services.application_start_screening(application_id=a.pk, actor=_actor(request)),
        )

    @admin.action(description="Start interview (I am the interviewer)")
    def start_interview(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda a: services.application_start_interview(application_id=a.pk, actor=_actor(request)),
        )

    @admin.action(description="Approve (needs every criterion scored)")
    def approve(self, request: HttpRequest, queryset: QuerySet[Application]) -> HttpResponse | None:
        prompt = NotePrompt(
            action="approve",
            title="Approve",
            label="Note for the engineer (optional)",
            required=False,
            why="The level follows from the scores; approval makes the engineer matchable.",
        )
        return _with_note(
            self,
            request,
            queryset,
            prompt,
            lambda a, note: services.application_approve(application_id=a.pk, actor=_actor(request), note=note),
        )

    @admin.action(description="Reject")
    def reject(self, request: HttpRequest, queryset: QuerySet[Application]) -> HttpResponse | None:
        prompt = NotePrompt(
            action="reject",
            title="Reject",
            label="Reason (the engineer sees it)",
            required=True,
            why="The engineer can apply again after the cool-down.",
        )
        return _with_note(
            self,
            request,
            queryset,
            prompt,
            lambda a, note: services.application_reject(application_id=a.pk, actor=_actor(request), reason=note),
        )


@admin.register(VettedRecord)
class VettedRecordAdmin(admin.ModelAdmin[VettedRecord]):
    list_display = ("engineer", "level", "score", "vetted_at", "expires_at", "state")
    list_filter = ("level",)
    search_fields = ("engineer__email",)
    list_select_related = ("engineer",)
    actions = ("revoke",)
    readonly_fields = (
        "engineer",
        "application",
        "level",
        "score_bp",
        "category_scores",
        "vetted_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "revoke_reason",
        "superseded_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="score")
    def score(self, record: VettedRecord) -> str:
        return f"{record.score_bp / 100:.2f}%"

    @admin.display(description="state")
    def state(self, record: VettedRecord) -> str:
        if record.revoked_at:
            return "revoked"
        if record.superseded_at:
            return "superseded"
        return "expired" if record.expires_at <= timezone.now() else "current"

    @admin.action(description="Revoke (takes the engineer out of matching now)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[VettedRecord]) -> HttpResponse | None:
        prompt = NotePrompt(
            action="revoke",
            title="Revoke",
            label="Reason (required, kept with the record)",
            required=True,
            why="Revoked engineers drop out of matching at once.",
        )
        return _with_note(
            self,
            request,
            queryset,
            prompt,
            lambda r, note: services.vetted_record_revoke(record_id=r.pk, actor=_actor(request), reason=note),
        )


class CategoryInline(ReadOnlyInline[RubricCategory, Rubric]):
    model = RubricCategory
    fields = ("position", "key", "name", "description")


@admin.register(Rubric)
class RubricAdmin(ReadOnlyAdmin):
    """A rubric never changes; add a version through the API or `manage.py load_rubric`."""

    list_display = ("specialty", "version", "title", "created_at", "created_by")
    inlines = (CategoryInline,)


@admin.register(Criterion)
class CriterionAdmin(ReadOnlyAdmin):
    list_display = ("title", "category", "weight", "rubric")
    list_filter = ("category__rubric",)
    list_select_related = ("category__rubric",)

    @admin.display(description="rubric")
    def rubric(self, criterion: Criterion) -> Rubric:
        return criterion.category.rubric
