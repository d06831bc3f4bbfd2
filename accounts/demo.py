"""The demo cast that `make run` seeds and the landing page lists in development."""

from accounts.models import Role

DEMO_USERS = [
    ("client@vetted.test", Role.CLIENT, "Casey Client", False),
    ("ada@vetted.test", Role.ENGINEER, "Ada Engineer", False),
    ("linus@vetted.test", Role.ENGINEER, "Linus Engineer", False),
    ("staff@vetted.test", "", "Sam Staff", True),
    # A second staff member: whoever interviews an engineer does not also approve them (four eyes).
    ("lead@vetted.test", "", "Lee Lead", True),
]

# The demo engineers arrive vetted, scored through the real services by the demo staff member.
DEMO_VETTING_SCORES = {"ada@vetted.test": 4, "linus@vetted.test": 3}

DEMO_ENGINEER_PROFILES = {
    "ada@vetted.test": {
        "headline": "Async Python backend engineer",
        "skills": ["python", "django", "asyncio", "postgresql", "celery"],
        "hourly_rate_minor": 9_000,
        "weekly_hours_available": 30,
        "time_zone": "Europe/Berlin",
        "years_experience": 9,
    },
    "linus@vetted.test": {
        "headline": "Backend engineer, APIs and data",
        "skills": ["python", "fastapi", "asyncio", "redis"],
        "hourly_rate_minor": 7_500,
        "weekly_hours_available": 20,
        "time_zone": "America/New_York",
        "years_experience": 5,
    },
}
