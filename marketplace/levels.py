"""Seniority levels: vetting grants an engineer one, and a request asks for at least one.

A shared type, in the kernel: hiring_requests' models name it without depending on vetting.
"""

from django.db import models


class Level(models.TextChoices):
    JUNIOR = "junior", "Junior"
    MID = "mid", "Mid"
    SENIOR = "senior", "Senior"
    STAFF = "staff", "Staff"
