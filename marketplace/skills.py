"""One spelling per skill, so that "Django", " django " and "DJANGO" match."""

import re

MAX_SKILLS = 40
MAX_SKILL_LENGTH = 50
_ALLOWED = re.compile(r"^[a-z0-9][a-z0-9+#.\-]*$")


def normalize_skill(raw: str) -> str:
    """Lower-case, trimmed, inner spaces as hyphens: "Async IO " -> "async-io"."""
    skill = re.sub(r"\s+", "-", raw.strip().lower())
    if not skill:
        raise ValueError("a skill cannot be empty")
    if len(skill) > MAX_SKILL_LENGTH:
        raise ValueError(f"a skill is at most {MAX_SKILL_LENGTH} characters: {skill[:20]}...")
    if not _ALLOWED.match(skill):
        raise ValueError(f"{raw!r} is not a skill name: use letters, digits and + # . -")
    return skill


def normalize_skills(raw: list[str]) -> list[str]:
    """Normalized, without duplicates, sorted: the stored form of a skill list."""
    skills = sorted({normalize_skill(item) for item in raw})
    if len(skills) > MAX_SKILLS:
        raise ValueError(f"at most {MAX_SKILLS} skills")
    return skills
