"""One app's homework state, and what a request reads from it: the plugin manager, the
library, the current brand, public links, plugin events.

`Homework.init_app` (homework.extension) builds the state once per app and keeps it in
`app.extensions["homework"]`; it lives as long as the app. Views, commands and domain code
ask this module, never the extension, so the wiring layer is the only one that knows
everybody.
"""

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pluggy
from flask import Flask, current_app, request, url_for
from flask_babel import gettext as _
from werkzeug.sansio.utils import host_is_trusted

from . import storage, tracking
from .branding import Brand, LogoError, host_logo, merge_brand
from .handouts import HandoutInputs
from .library import Library
from .resources import resource_dir


@dataclass
class HomeworkState:
    """Everything one app's homework needs, kept in app.extensions["homework"]."""

    pm: pluggy.PluginManager
    url_prefix: str
    standalone: bool
    library: Library
    migrations_current: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def assignment_pack_folders(pm: pluggy.PluginManager) -> list[Path]:
    """The bundled pack, then HOMEWORK_ASSIGNMENT_DIRS, then plugins' packs, in that order
    (a later pack replaces an earlier one's assignment of the same id)."""
    folders = [resource_dir("assignments") / "core"]
    # pluggy returns the last-registered plugin first and the trylast built-in last.
    for result in reversed(pm.hook.register_assignment_packs()):
        folders.extend(Path(f) for f in result or [])
    return folders


def refresh_library() -> None:
    """Merge the clinic's authored assignments into this app's library when they changed
    (in any process): one small read per request, a merge only after a publish or import."""
    import sqlite3
    import threading

    from .authoring import store as authored

    state = get_state()
    try:
        token = authored.generation(storage.get_db())
    except sqlite3.OperationalError:  # not migrated yet: the files' library only
        return
    if token == state.extra.get("library_token"):
        return
    lock = state.extra.setdefault("library_lock", threading.Lock())
    with lock:
        if token == state.extra.get("library_token"):
            return  # another thread merged it meanwhile
        files = state.extra.setdefault("files_library", state.library)
        state.library = authored.merged_library(files, storage.get_db())
        state.extra["library_token"] = token


def get_state(app: Flask | None = None) -> HomeworkState:
    """Return homework's state for `app` (default: the current app)."""
    return (app or current_app).extensions["homework"]


def current_brand() -> Brand:
    """The branding for this request: the clinic's saved branding under whatever the
    `brand` hook answers (a host's keys win). Every page and handout reads this one."""
    return _brand_and_host_keys()[0]


def host_brand_keys() -> frozenset[str]:
    """The branding keys a plugin's `brand` hook supplies (not editable on Settings)."""
    return _brand_and_host_keys()[1]


def _brand_and_host_keys():
    hook = get_state().pm.hook.brand
    # The hook is firstresult for plugins that answer with everything; calling each
    # implementation lets a host give only some keys and keep the clinic's others.
    answers = [impl.function() for impl in reversed(hook.get_hookimpls())]
    brand, host_keys = merge_brand([a for a in answers if a])
    if "logo" in host_keys and brand.logo:
        state = get_state()
        try:
            name = host_logo(
                brand.logo,
                Path(current_app.config["HOMEWORK_UPLOADS"]),
                state.extra.setdefault("host_logos", {}),
            )
        except LogoError as exc:
            logged = state.extra.setdefault("host_logos_refused", set())
            if str(exc) not in logged:
                logged.add(str(exc))
                current_app.logger.warning("the brand hook's logo was refused: %s", exc)
            name = ""
        brand = replace(brand, logo=name)
    return brand, host_keys


def extra_handout_css() -> str:
    """Every plugin's extra handout CSS, joined."""
    return "\n".join(css for css in get_state().pm.hook.extra_handout_css() if css)


def handout_inputs() -> HandoutInputs:
    """What every handout prints besides its snapshots: brand, plugin CSS, check-in link."""
    return HandoutInputs(current_brand(), extra_handout_css(), live_checkin_url)


def live_checkin_url(packet_id: int) -> str | None:
    """The live check-in URL of a packet (None when revoked, expired or there is none)."""
    secret, _weeks = checkin_config()
    link = tracking.current_link(storage.get_db(), secret, packet_id)
    if link is None or link.revoked or link.expired(date.today()):
        return None
    return public_url_for("homework.checkin", token=link.token)


def checkin_config() -> tuple[str, int]:
    """(secret key, weeks a check-in link outlives the due date), for issuing links."""
    return current_app.secret_key, int(current_app.config["HOMEWORK_CHECKIN_EXPIRY_WEEKS"])


class UntrustedHost(RuntimeError):
    """No trusted public address to print in a link for the couple."""


# This machine's own names: a link to one reaches nobody, so a forged Host header of
# "localhost" gains an attacker nothing, and a demo on 127.0.0.1 still prints its QR codes.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


def public_url_for(endpoint: str, **values) -> str:
    """An absolute URL for the couple (printed on handouts): HOMEWORK_PUBLIC_URL's origin
    and path prefix when set, else the address this request came in on, if Flask's
    TRUSTED_HOSTS vouches for it; raise UntrustedHost otherwise."""
    base = current_app.config["HOMEWORK_PUBLIC_URL"]
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    # The Host header (or X-Forwarded-Host behind a proxy) is the client's to choose: it
    # goes on a couple's handout only when the clinic listed it.
    trusted = current_app.config.get("TRUSTED_HOSTS") or LOOPBACK_HOSTS
    if not host_is_trusted(request.host, trusted):
        raise UntrustedHost(
            _(
                "The check-in link cannot be printed: homework does not know this clinic's "
                "public address. Ask your clinic's admin to set HOMEWORK_PUBLIC_URL (for "
                "example https://practice.example) or TRUSTED_HOSTS, then try again."
            )
        )
    return url_for(endpoint, _external=True, **values)


def emit(event: str, **kwargs) -> None:
    """Tell every plugin that something happened, each on its own: a failing listener is
    logged with its plugin's name, and the others still hear of it."""
    hook = getattr(get_state().pm.hook, event)
    # pluggy's own order: the last registered first, homework's trylast default last.
    for impl in reversed(hook.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue
        try:
            impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception:  # a plugin's bug must not undo or hide a completed action
            current_app.logger.exception(
                "the plugin %r failed in its %s hook", impl.plugin_name, event
            )


def erasure_ledger() -> Path:
    """The file that remembers erased couples across restores (next to the database)."""
    return Path(current_app.config["HOMEWORK_DATABASE"]).with_name("erasures.jsonl")
