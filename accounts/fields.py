"""Kept only for the migrations: accounts, vetting and hiring_requests 0001_initial import
`accounts.fields.SkillListField`. The field lives in `marketplace.fields` (a shared type); new code imports it
from there. The class is the same object, so its deconstruct() path is `marketplace.fields.SkillListField` and
makemigrations sees no change.
"""

from marketplace.fields import SkillListField

__all__ = ["SkillListField"]
