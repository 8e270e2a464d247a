"""The plugin API: every hook homework calls. Documented in the README, one heading each."""

import pluggy

hookspec = pluggy.HookspecMarker("homework")
# Plugins (and homework's own defaults) mark their implementations with this.
hookimpl = pluggy.HookimplMarker("homework")


@hookspec(firstresult=True)
def current_therapist():  # type: ignore[empty-body]
    """Return who is logged in as {"id", "name", "is_admin"} (or an object with those
    attributes), or None when nobody is. The first non-None answer wins."""


@hookspec(firstresult=True)
def login_url(next_url):  # type: ignore[empty-body]
    """Return the URL of the login page that brings the user back to `next_url`."""


@hookspec
def register_assignment_packs():  # type: ignore[empty-body]
    """Return a list of folders, each holding a pack.yaml and assignment files."""


@hookspec(firstresult=True)
def brand():  # type: ignore[empty-body]
    """Return the clinic's branding as a mapping with any of the keys of
    `homework.branding.Brand` (name, logo, primary, accent, address, phone, website, footer,
    confidentiality, crisis, paper, word). The first non-None answer wins."""


@hookspec
def extra_handout_css():  # type: ignore[empty-body]
    """Return CSS (a string) appended to the handout's stylesheet. Trusted: it is code."""


@hookspec
def homework_issued(packet_id, couple_id, homework_ids, therapist_id):  # type: ignore[empty-body]
    """Homework was issued (after it is stored): `homework_ids` in `packet_id`, for
    `couple_id`, by `therapist_id`. For syncing with an EHR or sending a message."""


@hookspec
def practice_recorded(practice_id, homework_id, couple_id, source):  # type: ignore[empty-body]
    """A practice was recorded (after it is stored); `source` is "checkin" (the couple)
    or "session" (the therapist)."""


@hookspec(firstresult=True)
def send_reminder(reminder):  # type: ignore[empty-body]
    """Deliver one reminder or digest (`homework.reminders.Reminder`: `kind`, `to`,
    `subject`, `text`, `html`, `couple_id`, `partner`, `therapist_id`, `checkin_url`,
    `stop_url`, `outbox_id`). Return a short name of the channel that took it ("sms");
    return None to let the next channel try; raise to report a failure (the message is
    kept for the admin, and the send is tried again later). The first answer wins; e-mail
    through the clinic's SMTP server is the trylast default. `to` is PHI: never log it."""


@hookspec(firstresult=True)
def interface_language():  # type: ignore[empty-body]
    """Return the language code (e.g. "es") homework's pages should speak in this request,
    typically the signed-in user's language in the host app; None lets homework choose
    (the browser's Accept-Language, then BABEL_DEFAULT_LOCALE). A code homework has no
    catalogue for is ignored. Not asked on the couple's check-in page, which speaks the
    couple's language. The first non-None answer wins; standalone, the signed-in
    account's own setting is the trylast default."""
