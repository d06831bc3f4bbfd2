"""The web app's forms: what a person types, turned into what the API's schemas accept.

A form checks only what is about typing (a number that is not a number, an amount
in major units); every rule of the marketplace is the API schema's or the service's.
`validate_with` runs the API's own input schema on the cleaned values, so a request
raised in the browser is refused for exactly the reasons the API would give, each
shown next to its field.
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from pydantic import BaseModel, ValidationError

from marketplace.errors import DomainError
from marketplace.money import minor_unit_exponent

CURRENCIES = [
    ("usd", "USD"),
    ("eur", "EUR"),
    ("gbp", "GBP"),
    ("cad", "CAD"),
    ("aud", "AUD"),
    ("chf", "CHF"),
    ("pln", "PLN"),
    ("sek", "SEK"),
]
LEVELS = [("junior", "Junior"), ("mid", "Mid"), ("senior", "Senior"), ("staff", "Staff")]


def to_minor(amount: Decimal, currency: str) -> int:
    """An amount in major units ("90.50") as integer minor units of `currency` (9050 for USD).

    Raises ValueError when the amount has more decimals than the currency has (ISO 4217).
    """
    exponent = minor_unit_exponent(currency)
    scaled = amount * (10**exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{currency.upper()} has {exponent} decimals")
    return int(scaled)


def skills(text: str) -> list[str]:
    """ "python, asyncio ,postgresql" -> ["python", "asyncio", "postgresql"]: commas separate, blanks dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def validate_with(form: forms.Form, schema: type[BaseModel], data: dict[str, Any], *, fields: dict[str, str]) -> Any:
    """`schema` validated on `data`; its errors added to `form`, each on its field (`fields`: schema name -> form name).

    Returns the validated model, or None when there were errors. A field the form already
    refused keeps its own error (the schema would only say it is missing).
    """
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            target = fields.get(name, name) if fields.get(name, name) in form.fields else None
            if target is None or target not in form.errors:
                form.add_error(target, error["msg"])
        return None


def refuse(form: forms.Form, error: DomainError, *, fields: dict[str, str] | None = None) -> None:
    """A service's refusal shown on the form: on its field when it names one the form has, else above the form."""
    name = (fields or {}).get(error.field, error.field)
    form.add_error(name if name in form.fields else None, error.detail)


class SignupForm(forms.Form):
    role = forms.ChoiceField(
        choices=[("client", "I want to hire engineers"), ("engineer", "I am an engineer")],
        widget=forms.RadioSelect,
        initial="client",
    )
    full_name = forms.CharField(max_length=150, label="Your name")
    email = forms.EmailField(max_length=254)
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), max_length=128)


class RequestForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}))
    required_skills = forms.CharField(help_text="Comma-separated, e.g. python, asyncio", label="Required skills")
    nice_to_have_skills = forms.CharField(required=False, label="Nice to have")
    min_level = forms.ChoiceField(choices=LEVELS, initial="mid", label="Minimum level")
    budget_kind = forms.ChoiceField(choices=[("hourly", "Hourly rate"), ("fixed", "Fixed price")], label="Budget")
    budget = forms.DecimalField(min_value=Decimal("0.01"), decimal_places=2, label="Amount (per hour when hourly)")
    currency = forms.ChoiceField(choices=CURRENCIES, initial="usd")
    hours_per_week = forms.IntegerField(initial=20, label="Hours a week")
    time_zone = forms.CharField(initial="UTC", label="Your time zone", help_text="e.g. Europe/London")
    min_overlap_hours = forms.IntegerField(initial=4, label="Working hours to share")
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    # The API schema's names for the fields that differ here.
    SCHEMA_FIELDS = {"budget_minor": "budget"}

    def as_api(self) -> dict[str, Any]:
        """What the form cleaned, in RequestIn's names and units; fields the form refused are left out."""
        data = dict(self.cleaned_data)
        if "budget" in data:
            try:
                data["budget_minor"] = to_minor(data.pop("budget"), data.get("currency", "usd"))
            except (ValueError, InvalidOperation) as exc:
                self.add_error("budget", str(exc))
        if "required_skills" in data:
            data["required_skills"] = skills(data["required_skills"])
        data["nice_to_have_skills"] = skills(data.get("nice_to_have_skills") or "")
        return data


class AcceptForm(forms.Form):
    rate = forms.DecimalField(
        required=False, min_value=Decimal("0.01"), decimal_places=2, label="Propose another hourly rate (optional)"
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"placeholder": "Why, in a few words"}))


class MessageForm(forms.Form):
    body = forms.CharField(max_length=4000, widget=forms.Textarea(attrs={"rows": 2}), label="Message")


class MilestoneForm(forms.Form):
    title = forms.CharField(max_length=200)
    amount = forms.DecimalField(min_value=Decimal("0.01"), decimal_places=2)
    due_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))


class NoteForm(forms.Form):
    note = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReviewForm(forms.Form):
    overall = forms.TypedChoiceField(coerce=int, choices=[(n, f"{n} ★") for n in range(5, 0, -1)])
    public_text = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), label="Your review")
    private_note = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}), label="A note for staff only"
    )

    def __init__(self, *args: Any, categories: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.categories = categories
        for name in categories:
            self.fields[f"category_{name}"] = forms.TypedChoiceField(
                coerce=int, choices=[(n, str(n)) for n in range(5, 0, -1)], label=name.capitalize()
            )


class ProfileForm(forms.Form):
    headline = forms.CharField(max_length=200, required=False)
    skills = forms.CharField(required=False, help_text="Comma-separated, e.g. python, asyncio, postgresql")
    hourly_rate = forms.DecimalField(min_value=Decimal("0"), decimal_places=2, label="Hourly rate")
    currency = forms.ChoiceField(choices=CURRENCIES)
    weekly_hours_available = forms.IntegerField(label="Hours a week you can take")
    time_zone = forms.CharField(help_text="e.g. Europe/Berlin")
    years_experience = forms.IntegerField(label="Years of experience")

    SCHEMA_FIELDS = {"hourly_rate_minor": "hourly_rate"}

    def as_api(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        if "hourly_rate" in data:
            try:
                data["hourly_rate_minor"] = to_minor(data.pop("hourly_rate"), data.get("currency", "usd"))
            except (ValueError, InvalidOperation) as exc:
                self.add_error("hourly_rate", str(exc))
        if "skills" in data:
            data["skills"] = skills(data["skills"])
        return data


class ApplicationForm(forms.Form):
    statement = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What you have built and run with async Python, in production. At least 20 characters.",
    )
    links = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="One URL a line: code, talks, writing."
    )
