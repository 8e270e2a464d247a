"""Password rules (a frequency-based strength estimate) and argon2id hashing."""

import functools
import re
import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l

MIN_LENGTH = 8
MAX_LENGTH = 256
# zxcvbn's score: 3 is "safely unguessable" (about 10^10 guesses), enough that a stolen
# argon2id hash is slow to crack, not only that throttled logins are slow to guess.
MIN_SCORE = 3
# zxcvbn's matching is quadratic in the length; anything past this only adds strength.
ANALYSED_LENGTH = 72

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def normalise_password(password: str) -> str:
    """NFKC: the same password typed on two keyboards (composed or decomposed accents,
    fullwidth letters) is the same string."""
    return unicodedata.normalize("NFKC", password)


def _reasons(result: dict) -> list[str]:
    """Plain words for what made zxcvbn find the password guessable."""
    reasons = []
    for match in result["sequence"]:
        pattern = match["pattern"]
        if pattern == "dictionary":
            name = match.get("dictionary_name")
            if name == "passwords":
                reasons.append(_l("It is one of the most common passwords, or close to one."))
            elif name == "user_inputs":
                reasons.append(_l("It contains your name or email address."))
            elif name in ("female_names", "male_names", "surnames"):
                reasons.append(_l("It is built on a common name."))
            else:
                reasons.append(_l("It is built on a single common word."))
            if match.get("l33t"):
                reasons.append(
                    _l("Swapping letters for look-alikes (like @ for a, 0 for o) fools nobody.")
                )
            if match.get("reversed"):
                reasons.append(_l("A word spelled backwards is easy to guess."))
        elif pattern == "spatial":
            reasons.append(_l("Keys next to each other (like qwerty or asdf) are easy to guess."))
        elif pattern == "repeat":
            reasons.append(
                _l("Repeated characters or groups (like aaa or abcabc) are easy to guess.")
            )
        elif pattern == "sequence":
            reasons.append(_l("Sequences like abc or 1234 are easy to guess."))
        elif pattern in ("regex", "date"):
            reasons.append(_l("Years and dates are easy to guess."))
    if not reasons:
        reasons.append(_l("It is too short for the few kinds of characters it uses."))
    return list(dict.fromkeys(str(r) for r in reasons))


def password_problem(password: str, user_inputs: tuple[str, ...] = ()) -> str | None:
    """Return why `password` is not acceptable, in plain words, or None when it is."""
    password = normalise_password(password)
    if len(password) < MIN_LENGTH:
        return str(_l("Use at least %(n)d characters.", n=MIN_LENGTH))
    if len(password) > MAX_LENGTH:
        return str(_l("Use at most %(n)d characters.", n=MAX_LENGTH))
    # Each word of the name and email counts too: "tessward" is as guessable as "Tess Ward".
    words = {w for u in user_inputs for w in [u, *re.split(r"\W+", u)] if len(w) >= 3}
    # On first use: its word lists take 12 MB in every process that imports it, and a
    # web process that never sets a password has no use for them.
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:ANALYSED_LENGTH], user_inputs=sorted(w.lower() for w in words))
    if result["score"] >= MIN_SCORE:
        return None
    return " ".join(
        [
            str(_l("That password is too easy to guess.")),
            *_reasons(result),
            str(_l("Try a few unrelated words, like a short sentence only you would say.")),
        ]
    )


def hash_password(password: str) -> str:
    """Hash the NFKC form with argon2id."""
    return _hasher.hash(normalise_password(password))


def check_password(stored_hash: str, password: str) -> tuple[bool, bool]:
    """(matches, should be re-hashed): a hash made before passwords were normalised (or
    with older parameters) still verifies, and is worth replacing."""
    normal = normalise_password(password)
    for candidate in dict.fromkeys((normal, password)):
        try:
            if _hasher.verify(stored_hash, candidate):
                return True, candidate != normal or _hasher.check_needs_rehash(stored_hash)
        except (VerificationError, InvalidHashError):
            continue
    return False, False


def verify_password(stored_hash: str, password: str) -> bool:
    """Check a password against its hash (NFKC first, then as typed, for old hashes)."""
    return check_password(stored_hash, password)[0]


@functools.cache
def dummy_hash() -> str:
    """A hash to verify against when the account does not exist, so both answers take the
    same time. Made on first use: hashing at import cost every host app's start-up."""
    return _hasher.hash(secrets.token_urlsafe(16))


def generate_password() -> str:
    """Return a random password that is easy to type from a printout."""
    return "-".join(secrets.token_urlsafe(6).replace("_", "x").replace("-", "y") for _ in range(3))
