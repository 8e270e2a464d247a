"""The clinic's branding page (admins), with a live letterhead preview and a sample PDF."""

from dataclasses import asdict, replace
from datetime import date
from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import branding, issuing
from ..forms import BrandForm
from ..handouts import long_date
from ..state import current_brand, get_state, host_brand_keys
from ..storage import get_db
from .access import admin_required, current_therapist
from .documents import pdf_or_error


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/settings", "settings", settings, methods=["GET", "POST"])
    bp.add_url_rule("/settings/sample.pdf", "sample_pdf", sample_pdf)
    bp.add_url_rule("/settings/logo.png", "logo", logo)


def _brand_form(stored: branding.Brand, host_keys: frozenset[str]) -> tuple[BrandForm, list[str]]:
    """The branding form without the fields a host's `brand` hook supplies, and those
    fields' labels (the page says the host supplies them)."""
    form = BrandForm(data=asdict(stored))
    supplied = []
    for key in sorted(host_keys, key=list(form._fields).index):
        supplied.append(str(form[key].label.text))
        del form[key]
        if key == "logo":
            del form["remove_logo"]
    return form, supplied


@admin_required
def settings():
    db = get_db()
    stored = branding.load_brand(db)
    host_keys = host_brand_keys()
    form, supplied = _brand_form(stored, host_keys)
    page = {"brand": current_brand(), "supplied": supplied}
    if form.validate_on_submit():
        logo_name = stored.logo
        if "logo" not in host_keys:
            logo_name = "" if form.remove_logo.data else stored.logo
            upload = request.files.get("logo")
            if upload and upload.filename:
                try:
                    # Read no more than the limit, but report the file's real size.
                    size = branding.upload_size(upload.stream)
                    if size is not None and size > branding.LOGO_MAX_BYTES:
                        raise branding.LogoError(branding.logo_too_large(size))
                    png = branding.process_logo(upload.stream.read(branding.LOGO_MAX_BYTES + 1))
                except branding.LogoError as exc:
                    form.logo.errors = [str(exc)]
                    return render_template("homework/settings.html", form=form, **page), 400
                logo_name = branding.store_logo(Path(current_app.config["HOMEWORK_UPLOADS"]), png)
        # What the host supplies stays as the clinic last saved it.
        values = {
            k: (v or "").strip()
            for k, v in form.data.items()
            if k in asdict(stored) and k != "logo"
        }
        new = replace(stored, **values, logo=logo_name)
        branding.save_brand(db, new, current_therapist().id)
        labels = {"primary": _("main colour"), "accent": _("accent colour")}
        for which, colour, ratio in branding.low_contrast_colours(new):
            flash(
                _(
                    "The %(which)s %(colour)s has a contrast of %(ratio).1f:1 on white; text "
                    "in it may be hard to read (aim for %(goal).1f:1 or more).",
                    which=labels[which],
                    colour=colour,
                    ratio=ratio,
                    goal=branding.MIN_TEXT_CONTRAST,
                ),
                "error",
            )
        flash(_("Branding saved."), "info")
        return redirect(url_for("homework.settings"))
    status = 400 if form.errors else 200
    return render_template("homework/settings.html", form=form, **page), status


@admin_required
def logo():
    data = branding.read_logo(Path(current_app.config["HOMEWORK_UPLOADS"]), current_brand().logo)
    if data is None:
        return "", 404
    return data, 200, {"Content-Type": "image/png", "Cache-Control": "no-store"}


@admin_required
def sample_pdf():
    """A sample handout with invented names and the current branding."""
    library = get_state().library
    assignment = library.get("memory-walk") or next(iter(library.assignments.values()))
    brand = current_brand()
    me = current_therapist()
    snapshot = issuing.sample_snapshot(
        assignment, date.today(), me.name, me.printed_line, brand.name, brand.crisis, long_date
    )
    return pdf_or_error([snapshot])
