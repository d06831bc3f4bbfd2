"""The one spelling of an email address: what accounts stores and every input schema and login compares."""

import unicodedata


def email_key(email: str) -> str:
    """The one form an email address is stored and looked up in: NFKC, trimmed, lower-cased."""
    return unicodedata.normalize("NFKC", email or "").strip().lower()
