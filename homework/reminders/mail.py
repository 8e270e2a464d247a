"""E-mail through the clinic's own SMTP server, with the standard library's `email` and
`smtplib`: building a message, one connection reused for a run, and a test that says
exactly why a server cannot be reached."""

import functools
import re
import secrets
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr, getaddresses, make_msgid

from flask_babel import gettext as _

from .settings import SmtpSettings


class SendFailed(Exception):
    """A message did not go out. `permanent`: trying again will not help (the server
    refused the address); the message is the server's answer, for the admin."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Reminder:
    """One message for the `send_reminder` hook: who it is for (by ids) and what it says."""

    outbox_id: int
    kind: str  # "reminder" (to a partner) or "digest" (to a therapist)
    to: str  # the e-mail address: PHI, never to be logged
    subject: str
    text: str
    html: str
    couple_id: int | None = None
    partner: str | None = None  # "a" or "b" for a reminder
    therapist_id: int | str | None = None  # for a digest
    checkin_url: str | None = None
    stop_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def sender(settings: SmtpSettings, display_name: str) -> str:
    """HOMEWORK_MAIL_FROM, with the clinic's name as the display name if it has none."""
    return _sender(settings.mail_from or "", display_name)


def envelope_sender(settings: SmtpSettings) -> str:
    """The bare address of HOMEWORK_MAIL_FROM, for the SMTP envelope."""
    return _parse_from(settings.mail_from or "")[1]


# The same for every message of a run (and mostly of a clinic's lifetime): parsed once.
@functools.lru_cache(maxsize=16)
def _parse_from(mail_from: str) -> tuple[str, str]:
    return getaddresses([mail_from])[0]


@functools.lru_cache(maxsize=16)
def _sender(mail_from: str, display_name: str) -> str:
    name, address = _parse_from(mail_from)
    if not address or "@" not in address:
        # A setting the admin will fix: the message waits for it like for a server outage.
        raise SendFailed(_("HOMEWORK_MAIL_FROM is not an e-mail address."))
    return formataddr((name or display_name, address), charset="utf-8")


def _header(value: str) -> str | Header:
    """A header value, encoded (RFC 2047) only when it is not plain ASCII."""
    return value if value.isascii() else Header(value, "utf-8")


class _Policy(Compat32):
    """compat32, with a header that fits on its line as plain ASCII written as it is:
    the bytes compat32 writes for it (it would build a Header object to find that out,
    for each of a message's headers). Anything longer or beyond ASCII is folded and
    encoded by compat32 itself."""

    def _fits(self, name: str, value: object) -> bool:
        return (
            isinstance(value, str)
            and value.isascii()
            and len(name) + 2 + len(value) <= (self.max_line_length or 0)
            and "\r" not in value
            and "\n" not in value
        )

    def fold(self, name: str, value: object) -> str:
        if self._fits(name, value):
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name: str, value: object) -> bytes:
        if self._fits(name, value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy()


def _text(body: str, subtype: str) -> MIMEText:
    """A UTF-8 body part: plain 7-bit when the text is ASCII, quoted-printable otherwise
    (readable in any mail program's "show source", unlike base64)."""
    if not body.isascii():
        return MIMEText(body, subtype, _UTF8_QP, policy=POLICY)
    part = MIMEText(body, subtype, None, policy=POLICY)
    part.set_charset(_UTF8_QP)  # labelled UTF-8; ASCII stays as written (7bit)
    return part


# Quoted-printable UTF-8 bodies. The classic (compat32) email classes build a message in a
# tenth of the time of EmailMessage's header registry: it counts when a clinic's week of
# reminders goes out at once.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def build_message(reminder: Reminder, settings: SmtpSettings, clinic: str, now) -> Message:
    """A plain-text message with an HTML alternative, and the headers of automated mail."""
    # Our own random boundary: the generator would otherwise pick one and compile a
    # regular expression per message to check that no line of the bodies starts with it.
    # 128 random bits cannot turn up in a reminder's text, and "_" is not base64.
    message = MIMEMultipart("alternative", boundary=f"=_homework_{secrets.token_hex(16)}",
                            policy=POLICY)  # fmt: skip
    message["From"] = sender(settings, clinic)
    message["To"] = reminder.to
    message["Subject"] = _header(reminder.subject)
    message["Date"] = format_datetime(now)
    domain = (settings.mail_from or "homework.invalid").rsplit("@", 1)[-1].strip("> ")
    message["Message-ID"] = make_msgid("homework", domain=domain)
    # No out-of-office answers, no auto-forwarding loops: this is a machine's message.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    for name, value in reminder.headers.items():
        message[name] = _header(value)
    message.attach(_text(reminder.text, "plain"))
    message.attach(_text(reminder.html, "html"))
    return message


class Mailer:
    """One SMTP connection, opened on first use and reused until `close`."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def send(
        self, message: Message, from_addr: str | None = None, to_addrs: list[str] | None = None
    ) -> None:
        """Send one message, reconnecting once if the kept connection was dropped. The
        envelope's addresses come from the From and To headers unless given."""
        problem = self.settings.problem()
        if problem:
            raise SendFailed(problem)
        for attempt in (1, 2):
            fresh = self.smtp is None
            try:
                if self.smtp is None:
                    self.smtp = connect(self.settings)
                self.smtp.send_message(message, from_addr, to_addrs)
                return
            except smtplib.SMTPServerDisconnected as exc:
                self.smtp = None
                if fresh or attempt == 2:
                    raise SendFailed(explain(exc, self.settings)) from None
            except (smtplib.SMTPException, OSError) as exc:
                self.close()
                raise SendFailed(explain(exc, self.settings), permanent=_permanent(exc)) from None

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ca_file)
    return context


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """Open, secure and log in to the SMTP server; raise smtplib or OS errors."""
    if settings.security == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=_tls_context(settings)
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        smtp.ehlo()
        if settings.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("STARTTLS")
            smtp.starttls(context=_tls_context(settings))
            smtp.ehlo()
        if settings.user:
            smtp.login(settings.user, settings.password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def _permanent(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _msg in exc.recipients.values())
    code = getattr(exc, "smtp_code", None)
    return (
        isinstance(code, int)
        and 500 <= code < 600
        and not isinstance(exc, smtplib.SMTPAuthenticationError)
    )


# An e-mail address in a server's answer ("550 5.1.1 <sam@home.example>: no such user").
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")


def without_addresses(text: str) -> str:
    """`text` with every e-mail address in it replaced by "[address]": a server's answer
    or a channel's error is kept in the outbox and shown to the admin, and addresses are
    PHI that belong only in the consent record."""
    return _ADDRESS.sub("[address]", text)


def _answer(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return without_addresses(f"{code} {text}").strip()


def explain(exc: BaseException, settings: SmtpSettings) -> str:
    """Say in plain words why mail could not go out, with the server's own answer."""
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, smtplib.SMTPNotSupportedError) and "STARTTLS" in str(exc):
        return _(
            "The server at %(where)s does not offer STARTTLS. Set HOMEWORK_SMTP_SECURITY "
            "to 'tls' if it expects TLS from the start (usually port 465).",
            where=where,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _(
            "The server at %(where)s showed a certificate homework cannot trust (%(why)s). "
            "Use the server's proper name in HOMEWORK_SMTP_HOST, or name your own CA's "
            "certificate in HOMEWORK_SMTP_CA_FILE.",
            where=where,
            why=exc.verify_message or str(exc),
        )
    if isinstance(exc, ssl.SSLError):
        return _(
            "The secure connection to %(where)s failed (%(why)s). Check that "
            "HOMEWORK_SMTP_SECURITY matches the port: 'starttls' for 587, 'tls' for 465.",
            where=where,
            why=exc.reason or str(exc),
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _(
            "The server at %(where)s refused the user name or password (%(answer)s). "
            "Check HOMEWORK_SMTP_USER and the password file.",
            where=where,
            answer=_answer(exc.smtp_code, exc.smtp_error),
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _(
            "The server refused the sender address in HOMEWORK_MAIL_FROM (%(answer)s).",
            answer=_answer(exc.smtp_code, exc.smtp_error),
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = "; ".join(_answer(c, m) for c, m in exc.recipients.values())
        return _("The server refused the recipient's address (%(answer)s).", answer=answers)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _(
            "The server at %(where)s answered with an error (%(answer)s).",
            where=where,
            answer=_answer(exc.smtp_code, exc.smtp_error),
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _(
            "The server at %(where)s closed the connection (%(why)s). If it expects TLS "
            "from the start, set HOMEWORK_SMTP_SECURITY to 'tls'.",
            where=where,
            why=str(exc) or _("no reason given"),
        )
    if isinstance(exc, socket.gaierror):
        return _(
            "The name %(host)s cannot be found (%(why)s). Check HOMEWORK_SMTP_HOST.",
            host=settings.host,
            why=exc.strerror or str(exc),
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return _(
            "The server at %(where)s did not answer within %(s)d seconds. Check the host, "
            "the port and any firewall between.",
            where=where,
            s=int(settings.timeout),
        )
    if isinstance(exc, ConnectionRefusedError):
        return _(
            "Nothing accepts connections at %(where)s. Check HOMEWORK_SMTP_HOST and "
            "HOMEWORK_SMTP_PORT, and that the mail server runs.",
            where=where,
        )
    if isinstance(exc, OSError):
        return _("Cannot reach %(where)s: %(why)s.", where=where, why=exc.strerror or str(exc))
    return _("The mail server at %(where)s failed: %(why)s", where=where, why=str(exc))


def send_test(settings: SmtpSettings, to: str, clinic: str, now) -> None:
    """Send the admin's test e-mail over a fresh connection; SendFailed says exactly why
    it could not."""
    text = _(
        "This is a test e-mail from homework at %(clinic)s. If you can read it, the "
        "clinic's mail settings work and reminders can go out.",
        clinic=clinic,
    )
    message = _text(text, "plain")
    message["From"] = sender(settings, clinic)
    message["To"] = to
    message["Subject"] = _header(_("homework: test e-mail"))
    message["Date"] = format_datetime(now)
    message["Auto-Submitted"] = "auto-generated"
    mailer = Mailer(settings)
    try:
        mailer.send(message)
    finally:
        mailer.close()
