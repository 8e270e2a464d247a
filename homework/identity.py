"""Who is asking: the answers an identity plugin may give, and therapist ids as stored."""

from typing import Any
from uuid import UUID

MAX_ID_LENGTH = 200


class Forbidden(Exception):  # noqa: N818 (the public name hosts raise: homework.Forbidden)
    """Raise from a `current_therapist` hook for someone signed in who is not a therapist.

    homework answers such a person with a 403 page, never a redirect to the login page
    (which would send a signed-in user straight back, forever)."""


def therapist_id(value: Any) -> int | str:
    """Return a host's therapist id in the one form homework stores and compares.

    Integers stay integers, and so does a string of plain digits ("42", as Flask-Login's
    `get_id()` gives it), so ids stored as numbers keep matching; any other string (a
    UUID, "u-7", "007") is kept exactly as given."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"a therapist id must be an integer or a string, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, UUID):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(
            f"a therapist id must be an integer or a string, not {type(value).__name__}"
        )
    if not value or len(value) > MAX_ID_LENGTH or value != value.strip():
        raise ValueError(
            f"a therapist id must be 1 to {MAX_ID_LENGTH} characters without surrounding "
            f"spaces, not {value!r}"
        )
    if value.isascii() and value.isdigit() and str(int(value)) == value:
        return int(value)
    return value
