"""Password rules and argon2id hashing."""

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l

MIN_LENGTH = 8
MAX_LENGTH = 256

# A short list of the passwords people pick most; longer lists help little once a
# minimum length and throttling are in place.
COMMON = frozenset(
    [
        "password",
        "password1",
        "password123",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "qwerty123",
        "iloveyou",
        "11111111",
        "00000000",
        "abc12345",
        "abcd1234",
        "letmein1",
        "welcome1",
        "welcome123",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "dragon123",
        "monkey123",
        "trustno1",
        "passw0rd",
        "p@ssw0rd",
        "changeme",
        "administrator",
        "admin123",
        "therapist",
        "therapy1",
        "homework",
        "homework1",
        "1q2w3e4r",
        "1qaz2wsx",
        "zaq12wsx",
        "qazwsxedc",
        "asdfghjkl",
        "superman",
        "batman123",
        "starwars",
        "whatever",
        "87654321",
        "12341234",
        "11223344",
        "aaaaaaaa",
    ]
)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def password_problem(password: str) -> str | None:
    """Return why `password` is not acceptable, or None when it is."""
    if len(password) < MIN_LENGTH:
        return str(_l("Use at least %(n)d characters.", n=MIN_LENGTH))
    if len(password) > MAX_LENGTH:
        return str(_l("Use at most %(n)d characters.", n=MAX_LENGTH))
    if password.lower() in COMMON:
        return str(_l("That password is on the list of most common ones; choose another."))
    return None


def hash_password(password: str) -> str:
    """Hash with argon2id."""
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Check a password against its hash, in constant time for the hash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A hash to verify against when the account does not exist, so both answers take the
    same time. Made on first use: hashing at import cost every host app's start-up."""
    return _hasher.hash(secrets.token_urlsafe(16))


def generate_password() -> str:
    """Return a random password that is easy to type from a printout."""
    return "-".join(secrets.token_urlsafe(6).replace("_", "x").replace("-", "y") for _ in range(3))
