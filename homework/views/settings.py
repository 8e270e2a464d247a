"""The clinic's branding page (admins), with a live letterhead preview and a sample PDF."""

from dataclasses import asdict, replace
from datetime import date
from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import branding, issuing
from ..couples import Couple
from ..extension import current_brand, extra_handout_css, get_state
from ..forms import BrandForm
from ..storage import get_db
from . import admin_required, current_therapist
from .assign import long_date
from .handouts import _pdf_bytes_or_error


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/settings", "settings", settings, methods=["GET", "POST"])
    bp.add_url_rule("/settings/sample.pdf", "sample_pdf", sample_pdf)
    bp.add_url_rule("/settings/logo.png", "logo", logo)


@admin_required
def settings():
    db = get_db()
    stored = branding.load_brand(db)
    form = BrandForm(data=asdict(stored))
    warnings = []
    if form.validate_on_submit():
        logo_name = "" if form.remove_logo.data else stored.logo
        upload = request.files.get("logo")
        if upload and upload.filename:
            try:
                png = branding.process_logo(upload.stream.read(branding.LOGO_MAX_BYTES + 1))
            except branding.LogoError as exc:
                form.logo.errors = [str(exc)]
                return render_template(
                    "homework/settings.html", form=form, brand=stored, warnings=[]
                ), 400
            logo_name = branding.store_logo(Path(current_app.config["HOMEWORK_UPLOADS"]), png)
        values = {
            k: (v or "").strip()
            for k, v in form.data.items()
            if k in asdict(stored) and k != "logo"
        }
        new = replace(branding.Brand.from_mapping(values), logo=logo_name)
        branding.save_brand(db, new, current_therapist().id)
        for label, colour in ((_("main colour"), new.primary), (_("accent colour"), new.accent)):
            ratio = branding.contrast_on_white(colour)
            if ratio < 4.5:
                flash(
                    _(
                        "The %(which)s %(colour)s has a contrast of %(ratio).1f:1 on white; text "
                        "in it may be hard to read (aim for 4.5:1 or more).",
                        which=label,
                        colour=colour,
                        ratio=ratio,
                    ),
                    "error",
                )
        flash(_("Branding saved."), "info")
        return redirect(url_for("homework.settings"))
    status = 400 if form.errors else 200
    return render_template(
        "homework/settings.html", form=form, brand=stored, warnings=warnings
    ), status


@admin_required
def logo():
    stored = branding.load_brand(get_db())
    data = branding.read_logo(Path(current_app.config["HOMEWORK_UPLOADS"]), stored.logo)
    if data is None:
        return "", 404
    return data, 200, {"Content-Type": "image/png", "Cache-Control": "no-store"}


@admin_required
def sample_pdf():
    """A sample handout with invented names and the current branding."""
    library = get_state().library
    assignment = library.get("memory-walk") or next(iter(library.assignments.values()))
    couple = Couple.unsaved(_("Sam"), _("Alex"))
    p = issuing.default_personalization(assignment, date.today())
    brand = current_brand()
    me = current_therapist()
    snapshot = issuing.build_snapshot(
        assignment, couple, p, me.name, brand.name, long_date, me.printed_line, brand.crisis
    )
    return _pdf_bytes_or_error([snapshot], brand, extra_handout_css())
