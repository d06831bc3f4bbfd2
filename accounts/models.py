from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from marketplace.email_addresses import email_key
from marketplace.fields import SkillListField, one_of


class Role(models.TextChoices):
    CLIENT = "client", "Client"
    ENGINEER = "engineer", "Engineer"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        return email_key(email or "")

    def get_by_natural_key(self, username: str | None) -> "User":
        # Admin and session logins look the user up here: any spelling of the address finds them.
        return self.get(email=email_key(username or ""))

    def create_user(self, email: str, password: str | None = None, **fields: object) -> "User":
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: object) -> "User":
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """Someone who logs in with an email address.

    Clients and engineers carry a role; staff are marked by `is_staff` and may
    have no role at all.
    """

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    welcome_sent_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values) | models.Q(is_staff=True),
                name="accounts_user_role_or_staff",
            ),
            # Saved in canonical form (email_key); the database refuses two spellings of one address too.
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_once_in_any_case"),
            one_of("role", Role, name="accounts_user_role_valid", or_blank=True),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = email_key(self.email)
        super().save(*args, **kwargs)

    @property
    def is_client(self) -> bool:
        return self.role == Role.CLIENT

    @property
    def is_engineer(self) -> bool:
        return self.role == Role.ENGINEER


class ClientProfile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="client_profile")
    company = models.CharField(max_length=200, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Client profile of {self.user.email}"


class EngineerProfile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="engineer_profile")
    headline = models.CharField(max_length=200, blank=True)
    skills = SkillListField()
    hourly_rate_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    weekly_hours_available = models.PositiveSmallIntegerField(default=0)
    time_zone = models.CharField(max_length=64, default="UTC")
    # Derived from time_zone when it is set, so matching can compare offsets in SQL.
    utc_offset_minutes = models.SmallIntegerField(default=0)
    years_experience = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(hourly_rate_minor__gte=0), name="accounts_engineer_rate_nonneg"),
            models.CheckConstraint(
                condition=models.Q(weekly_hours_available__lte=80), name="accounts_engineer_hours_max_80"
            ),
        ]

    def __str__(self) -> str:
        return f"Engineer profile of {self.user.email}"


class ApiToken(models.Model):
    """A bearer token for programs. Only a SHA-256 digest of the secret is kept.

    The token is random (256 bits), so a fast digest is enough: there is no
    password to guess, only a value too long to enumerate.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        indexes = [models.Index(fields=["user", "-created_at"], name="accounts_token_user_created")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
