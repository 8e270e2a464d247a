"""PDF responses shared by the handout, summary and branding pages: a download, or a
clear error page when the document could not be printed."""

from flask import Response, render_template
from flask_babel import gettext as _

from ..handouts import build_handout, handout_and_source, handout_filename, render_document
from ..pdf import RenderError
from ..state import handout_inputs


def render_snapshots_or_error(snapshots: list[dict], packet_id: int | None):
    """(pdf, None) or (None, an error response with a clear message)."""
    try:
        return build_handout(snapshots, packet_id, handout_inputs()), None
    except RenderError as exc:
        return None, render_failed(exc)


def handout_or_error(snapshots: list[dict], packet_id: int):
    """(pdf, rendered now?, None) or (None, False, an error response), for an issued
    handout (kept in the handout cache)."""
    try:
        pdf, rendered = handout_and_source(snapshots, packet_id, handout_inputs())
    except RenderError as exc:
        return None, False, render_failed(exc)
    return pdf, rendered, None


def render_failed(exc: RenderError):
    body = render_template(
        "homework/error.html", title=_("The document could not be printed"), message=str(exc)
    )
    return body, 503, {"Retry-After": "10"}


def render_html_or_error(html: str, filename: str):
    """(a PDF download, None) or (None, an error response) for one of our documents."""
    try:
        pdf = render_document(html)
    except RenderError as exc:
        return None, render_failed(exc)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    ), None


def pdf_download(pdf: bytes, filename: str) -> Response:
    """A PDF as a download named `filename` (neutral: never a couple's names)."""
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def pdf_or_error(snapshots: list[dict]):
    pdf, error = render_snapshots_or_error(snapshots, None)
    return error or pdf_download(pdf, handout_filename(snapshots))
