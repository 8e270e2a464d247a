"""Check-in links: tokens derived from the secret key, their state, and the links a couple's
page lists."""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import sqlite_utils

from .. import audit
from ..storage import write
from .practice import (
    _now,
)


def derive_token(secret_key: str, token_id: int, salt: str) -> str:
    """The 256-bit token for a stored row: HMAC-SHA256 of the row's salt under the app's
    secret key. The database alone (a leaked copy, a backup) cannot produce it."""
    mac = hmac.new(secret_key.encode(), f"checkin:{token_id}:{salt}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def token_digest(token: str) -> str:
    """What the database stores of a token: its sha256."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    db: sqlite_utils.Database,
    secret_key: str,
    couple_id: int,
    packet_id: int,
    expires_on: date,
    actor_id: int | None,
) -> str:
    """Add a check-in link for a packet; call inside a `write()` block. Returns the token."""
    salt = secrets.token_hex(16)
    cur = db.execute(
        "INSERT INTO checkin_tokens (token_sha256, salt, couple_id, packet_id, created_by,"
        " created_at, expires_on) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            secrets.token_hex(32),
            salt,
            couple_id,
            packet_id,
            actor_id,
            _now(),
            expires_on.isoformat(),
        ],
    )
    token = derive_token(secret_key, cur.lastrowid, salt)
    db.execute(
        "UPDATE checkin_tokens SET token_sha256 = ? WHERE id = ?",
        [token_digest(token), cur.lastrowid],
    )
    audit.record(
        db, "checkin.link_created", actor_id=actor_id, object_type="packet", object_id=packet_id
    )
    return token


@dataclass(frozen=True)
class Link:
    id: int
    packet_id: int
    couple_id: int
    expires_on: date
    revoked: bool
    token: str

    def expired(self, today: date) -> bool:
        return today > self.expires_on


def current_link(db: sqlite_utils.Database, secret_key: str, packet_id: int) -> Link | None:
    """The packet's newest check-in link (revoked or not), with its token."""
    row = db.execute(
        "SELECT * FROM checkin_tokens WHERE packet_id = ? ORDER BY id DESC LIMIT 1", [packet_id]
    ).fetchone()
    if row is None:
        return None
    return Link(
        row["id"],
        row["packet_id"],
        row["couple_id"],
        date.fromisoformat(row["expires_on"]),
        row["revoked_at"] is not None,
        derive_token(secret_key, row["id"], row["salt"]),
    )


def revoke_links(db: sqlite_utils.Database, packet_id: int, actor_id: int) -> None:
    """End every check-in link of a packet at once."""
    with write(db):
        db.execute(
            "UPDATE checkin_tokens SET revoked_at = ? WHERE packet_id = ? AND revoked_at IS NULL",
            [_now(), packet_id],
        )
        audit.record(
            db, "checkin.link_revoked", actor_id=actor_id, object_type="packet", object_id=packet_id
        )


def reissue_link(
    db: sqlite_utils.Database, secret_key: str, packet_id: int, actor_id: int, expiry_weeks: int
) -> str:
    """Revoke the packet's links and make a new one (a handout must be reprinted)."""
    with write(db):
        return store_new_link(db, secret_key, packet_id, actor_id, expiry_weeks)


def store_new_link(
    db: sqlite_utils.Database, secret_key: str, packet_id: int, actor_id: int, expiry_weeks: int
) -> str:
    """`reissue_link` inside a caller's `write()` block."""
    row = db.execute(
        "SELECT couple_id, MAX(due_date) AS due FROM homework WHERE packet_id = ?", [packet_id]
    ).fetchone()
    revoked = db.execute(
        "UPDATE checkin_tokens SET revoked_at = ? WHERE packet_id = ? AND revoked_at IS NULL",
        [_now(), packet_id],
    ).rowcount
    if revoked:
        audit.record(
            db,
            "checkin.link_revoked",
            actor_id=actor_id,
            object_type="packet",
            object_id=packet_id,
        )
    expires = max(date.fromisoformat(row["due"]), date.today()) + timedelta(weeks=expiry_weeks)
    return create_token(db, secret_key, row["couple_id"], packet_id, expires, actor_id)


def resolve_token(db: sqlite_utils.Database, token: str, today: date) -> dict | None:
    """The live link a token stands for, or None (unknown, expired and revoked alike),
    with what the couple's page shows of the couple (`partner_a`, `partner_b`, and each
    partner's language), read in the same statement."""
    if not token or len(token) > 100:
        return None
    row = db.execute(
        "SELECT k.id, k.couple_id, k.packet_id, k.expires_on, k.revoked_at, c.partner_a,"
        " c.partner_b, c.partner_a_language, c.partner_b_language"
        " FROM checkin_tokens k JOIN couples c ON c.id = k.couple_id WHERE k.token_sha256 = ?",
        [token_digest(token)],
    ).fetchone()
    if row is None or row["revoked_at"] or date.fromisoformat(row["expires_on"]) < today:
        return None
    return dict(row)


def packet_links(
    db: sqlite_utils.Database,
    secret_key: str,
    couple_id: int,
    today: date,
    address: Callable[[str], tuple[str | None, str | None]],
) -> list[dict]:
    """The couple's check-in links, one per packet that has current homework, oldest
    packet first: which items it covers, whether it works, its address and QR code.

    `address(token)` answers (url, None), or (None, why the link cannot be printed)."""
    from ..qr import qr_data_uri  # the same QR code the handout prints

    rows = db.execute(
        "SELECT h.packet_id, h.title, k.created_at FROM homework h"
        " JOIN packets k ON k.id = h.packet_id"
        " WHERE h.couple_id = ? AND h.status = 'active' AND h.due_date >= ?"
        " ORDER BY h.packet_id, h.id",
        [couple_id, today.isoformat()],
    ).fetchall()
    packets: dict[int, dict] = {}
    for row in rows:
        packet = packets.setdefault(
            row["packet_id"],
            {"packet_id": row["packet_id"], "given_on": row["created_at"], "titles": []},
        )
        packet["titles"].append(row["title"])
    out = []
    for packet in packets.values():
        link = current_link(db, secret_key, packet["packet_id"])
        live = link is not None and not link.revoked and not link.expired(today)
        url, problem = address(link.token) if live else (None, None)
        out.append(
            {
                **packet,
                "live": live,
                "url": url,
                "problem": problem,
                "local": bool(url) and link_stays_on_this_computer(url),
                "expires_on": link.expires_on if link else None,
                "qr": qr_data_uri(url) if url else None,
            }
        )
    return out


def link_stays_on_this_computer(url: str) -> bool:
    """Tell whether a check-in link names this computer (localhost, 127.x, ::1): printed on
    a handout, no couple's phone could open it."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
