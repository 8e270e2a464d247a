"""The interface's languages: homework's own message catalogue, the language each page
speaks, and a way to write a text in someone else's language (a partner's e-mail, a
calendar file).

Which language a page speaks, first answer wins:
1. a language chosen for this request by a view (`use_language`): the check-in page
   chooses the couple's language, or the one picked with its language switch;
2. the `interface_language` hook: a host app's plugin, or, standalone, the signed-in
   account's own setting;
3. the browser's Accept-Language header, among the languages homework has;
4. the app's BABEL_DEFAULT_LOCALE (English unless set).

homework keeps its catalogue in `homework/translations/` (a Flask-Babel domain of its
own), so a host app's catalogue and locale choice stay the host's: on the host's own pages
nothing changes, and on homework's pages the host's layout keeps its own translations.
"""

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from babel import Locale, support
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, Domain, force_locale, get_babel, get_locale, refresh

TRANSLATIONS = Path(__file__).parent / "translations"
DEFAULT_LANGUAGE = "en"  # the language the code is written in


@lru_cache(maxsize=1)
def _catalogued() -> tuple[str, ...]:
    return tuple(
        sorted(p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))
    )


def supported_languages() -> list[str]:
    """The language codes homework speaks: English and every catalogue it ships."""
    return [DEFAULT_LANGUAGE, *(c for c in _catalogued() if c != DEFAULT_LANGUAGE)]


def language_name(code: str) -> str:
    """A language's name in that language ("Español"), as a person looks for their own;
    the code itself when unknown."""
    try:
        return Locale.parse(code).get_display_name(code).capitalize()
    except (ValueError, TypeError):
        return code


def language_choices() -> list[tuple[str, str]]:
    """(code, name) for each supported language, for a form's choice list."""
    return [(code, language_name(code)) for code in supported_languages()]


def normalise_language(value: str | None) -> str | None:
    """A supported code from a code or a locale ("es", "es_MX", "ES-mx"); None otherwise."""
    if not value:
        return None
    base = str(value).strip().replace("-", "_").split("_")[0].lower()
    return base if base in supported_languages() else None


class HomeworkDomain(Domain):
    """homework's catalogue, with the host app's own catalogue underneath it, so a host's
    layout around homework's pages keeps its translations."""

    def __init__(self) -> None:
        super().__init__(translation_directories=[str(TRANSLATIONS)], domain="messages")
        self._combined: dict[tuple[str, int], support.Translations] = {}

    def get_translations(self) -> support.NullTranslations:
        """This request's translations, looked up once per request and locale: a page
        asks for a hundred strings or more, and Flask-Babel's lookup (context, locale,
        cache key, the host's domain) costs more per string than the rest of a row."""
        try:  # the quick way, taken for every string but a request's first
            ctx = g._flask_babel
            kept = ctx.homework_translations
            # The locale by identity: force_locale and refresh put a new one in its place.
            if kept[0] is self and kept[1] is ctx.babel_locale:
                return kept[2]
        except (AttributeError, RuntimeError):  # none kept yet, or no app context
            pass
        locale = get_locale()
        if locale is None:  # no app context: Flask-Babel's answer (no translations)
            return super().get_translations()
        translations = self._look_up()
        g._flask_babel.homework_translations = (self, locale, translations)
        return translations

    def _look_up(self) -> support.NullTranslations:
        ours = super().get_translations()
        app_domain = get_babel().instance.domain_instance
        if app_domain.translation_directories == self.translation_directories:
            return ours
        theirs = app_domain.get_translations()
        key = (str(get_locale()), id(theirs))
        if key not in self._combined:
            combined = support.Translations()
            if isinstance(theirs, support.Translations):
                combined.merge(theirs)
            combined.merge(ours)  # homework's own strings win on homework's pages
            if hasattr(ours, "plural"):
                combined.plural = ours.plural
            self._combined[key] = combined
        return self._combined[key]


def _domain(app: Flask | None = None) -> HomeworkDomain:
    return (app or current_app).extensions["homework"].extra["i18n_domain"]


def init_app(app: Flask, is_homework_request: Callable[[], bool]) -> None:
    """Give `app` homework's catalogue and its choice of language for homework's pages.

    A host's own Babel (and its locale selector) keeps deciding for the host's pages."""
    app.extensions["homework"].extra["i18n_domain"] = HomeworkDomain()
    if "babel" not in app.extensions:
        Babel(app, default_translation_directories=str(TRANSLATIONS))
    config = get_babel(app)
    host_selector = config.locale_selector

    def select_locale() -> str | None:
        if has_request_context() and is_homework_request():
            return homework_language()
        return host_selector() if host_selector else None

    config.locale_selector = select_locale


def activate() -> None:
    """Use homework's catalogue for the rest of this request (a before_request hook)."""
    _domain().as_default()


def homework_language() -> str:
    """The language of the homework page being answered (see the module's docstring)."""
    chosen = normalise_language(g.get("homework_language"))
    if chosen:
        return chosen
    if not g.get("homework_couple_page"):
        told = normalise_language(_told_language())
        if told:
            return told
    return browser_language() or default_language()


def _told_language() -> str | None:
    from .storage import DatabaseLocked, DatabaseUnavailable

    try:
        return current_app.extensions["homework"].pm.hook.interface_language()
    except (sqlite3.Error, DatabaseLocked, DatabaseUnavailable):
        return None  # the error page about the database must still answer


def for_couple(code: str | None) -> None:
    """This request is the couple's (the check-in page): speak `code`, else the
    browser's language; a therapist's own setting does not apply."""
    g.homework_couple_page = True
    _choose(code)
    refresh()  # the language may have been chosen for someone else already


def browser_language() -> str | None:
    """The best of homework's languages for the browser's Accept-Language, if any fits."""
    if not has_request_context():
        return None
    offered = supported_languages()
    best = request.accept_languages.best_match(offered)
    if best:
        return best
    for wanted, _quality in request.accept_languages:  # "es-MX" matches our "es"
        code = normalise_language(wanted)
        if code:
            return code
    return None


def default_language() -> str:
    """The app's default: BABEL_DEFAULT_LOCALE when homework speaks it, else English."""
    return normalise_language(current_app.config.get("BABEL_DEFAULT_LOCALE")) or DEFAULT_LANGUAGE


def use_language(code: str | None) -> None:
    """Answer the rest of this request in `code` (a view's choice, e.g. the couple's);
    nothing changes for an unsupported or empty code."""
    if _choose(code):
        refresh()


def _choose(code: str | None) -> bool:
    chosen = normalise_language(code)
    if chosen:
        g.homework_language = chosen
    return chosen is not None


def _known_locale(code: str | None) -> str | None:
    try:
        return str(Locale.parse(code, sep="-")) if code else None
    except (ValueError, TypeError):
        return None


@contextmanager
def in_language(code: str | None) -> Iterator[str]:
    """Write text in `code` inside the block (an e-mail or calendar file for one partner),
    with homework's catalogue, in a request or in a bare app context (the reminder loop).
    A language without a catalogue (a handout copy in Arabic) still gets its own dates,
    numbers and plural rules, with the catalogue's fallback words. An unknown or empty
    code writes in the current page's language, or the default."""
    language = (
        normalise_language(code)
        or _known_locale(code)
        or (str(get_locale()) if has_request_context() else default_language())
    )
    ctx = g.get("_flask_babel")
    previous = getattr(ctx, "babel_domain", None) if ctx is not None else None
    with force_locale(language):
        _domain().as_default()
        try:
            yield language
        finally:
            ctx = g.get("_flask_babel")
            if previous is not None:
                ctx.babel_domain = previous
            elif ctx is not None and hasattr(ctx, "babel_domain"):
                del ctx.babel_domain
