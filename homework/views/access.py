"""Who may reach what: the id converter, the logged-in therapist, the login and admin
guards, ownership lookups, and the check on `next=` targets."""

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

from .. import audit, couples, issuing
from ..identity import Forbidden, therapist_id
from ..state import get_state
from ..storage import get_db, write


class RowIdConverter(IntegerConverter):
    """A positive integer that fits an SQLite rowid, in ASCII digits (werkzeug's `\\d`
    also matches "٣" and friends)."""

    regex = r"[0-9]+"

    def __init__(self, url_map) -> None:
        super().__init__(url_map, min=1, max=2**63 - 1)


@dataclass(frozen=True)
class Therapist:
    """Who is logged in, as any identity plugin reports it."""

    id: int | str  # an integer, or the host's string id (a UUID) exactly as given
    name: str
    is_admin: bool
    credentials: str = ""  # printed after the name on handouts, e.g. "LMFT"
    contact: str = ""  # printed on handouts, e.g. a direct phone number

    @property
    def printed_line(self) -> str:
        """The therapist as a handout names them: name, credentials, contact."""
        return " · ".join(
            p for p in (", ".join(p for p in (self.name, self.credentials) if p), self.contact) if p
        )


def current_therapist() -> Therapist | None:
    """Ask the plugins who is logged in (first answer wins), once per request.

    None for nobody and for someone signed in who is not a therapist (a plugin raised
    `homework.Forbidden`); `login_required` tells the two apart."""
    if "homework_therapist" not in g:
        g.homework_forbidden = False
        try:
            found = get_state().pm.hook.current_therapist()
        except Forbidden:
            g.homework_forbidden = True
            found = None
        g.homework_therapist = _as_therapist(found) if found is not None else None
    return g.homework_therapist


def _as_therapist(found) -> Therapist:
    get = (
        found.get
        if isinstance(found, dict)
        else lambda key, default=None: getattr(found, key, default)
    )
    return Therapist(
        therapist_id(get("id")),
        str(get("name")),
        bool(get("is_admin", False)),
        str(get("credentials", "") or ""),
        str(get("contact", "") or ""),
    )


def login_required(view):
    """Send anonymous users to the login page, then back here."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_therapist() is None:
            if g.homework_forbidden:
                return not_a_therapist_page()
            # The script root too: behind a path prefix the login page sends people back
            # to an address that must still lead into this app.
            here = request.script_root + request.full_path.rstrip("?")
            target = get_state().pm.hook.login_url(next_url=here)
            if not target:
                abort(401)
            return redirect(target)
        if get_state().standalone and request.endpoint not in ENROLMENT_ENDPOINTS:
            from ..accounts import must_enrol_second_factor

            if must_enrol_second_factor():
                flash(
                    _("Your clinic requires two-factor login. Please set it up to go on."), "info"
                )
                return redirect(url_for("homework.two_factor"))
        return view(*args, **kwargs)

    return wrapped


def not_a_therapist_page():
    """403 for someone the host signed in who is not a therapist (never a login redirect)."""
    body = render_template(
        "homework/error.html",
        title=_("Not available to your account"),
        message=_(
            "You are signed in, but your account does not have therapist access to "
            "homework. If you need it, ask your clinic's administrator."
        ),
        back_link=False,  # the dashboard would answer the same
    )
    return body, 403


# Pages a user may still reach while the clinic waits for them to set up two-factor login.
ENROLMENT_ENDPOINTS = frozenset(
    {"homework.two_factor", "homework.logout", "homework.change_password"}
)


def admin_required(view):
    """Only admins; everyone else gets 404 so the page's existence is not revealed."""

    @login_required
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        me = current_therapist()
        if not me.is_admin:
            _audit_admin_attempt(me)
            abort(404)
        return view(*args, **kwargs)

    return wrapped


def _audit_admin_attempt(me: Therapist) -> None:
    """A therapist reached for an admin page: worth knowing (a probe, a stolen session)."""
    with write(get_db()) as db:
        audit.record(
            db,
            "admin.denied",
            actor_id=me.id,
            detail={"endpoint": request.endpoint, "method": request.method},
        )


def safe_next(target: str | None) -> str:
    """Return `target` if it is a path inside this app, else the dashboard's URL."""
    fallback = url_for("homework.dashboard")
    if not target or len(target) > 2000:
        return fallback
    # Browsers drop tabs and newlines and read backslashes as slashes, so "/\t/evil" and
    # "/\\evil" would leave the site: refuse any such character outright.
    if any(ch in target for ch in "\\") or any(ord(ch) < 33 or ord(ch) == 127 for ch in target):
        return fallback
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. "http://[x": not a URL at all
        return fallback
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    root = request.script_root + get_state().url_prefix
    if root and not (target == root or target.startswith(root + "/")):
        return fallback
    return target


def own_couple(couple_id: int) -> couples.Couple:
    """The couple, if it is the current therapist's; 404 (audited) otherwise."""
    found = couples.get_owned_couple(get_db(), couple_id, current_therapist().id)
    if found is None:
        abort(404)
    return found


def own_packet(packet_id: int) -> couples.Couple:
    """The couple of a packet, if it is the current therapist's; 404 (audited) otherwise."""
    couple_id = issuing.packet_couple(get_db(), packet_id)
    if couple_id is None:
        abort(404)
    return own_couple(couple_id)


def own_homework(hw_id: int) -> dict:
    """A homework item, if it is the current therapist's; 404 otherwise."""
    found = issuing.get_homework(get_db(), hw_id, current_therapist().id)
    if found is None:
        abort(404)
    return found
