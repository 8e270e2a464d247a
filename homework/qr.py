"""QR codes for check-in links, the same on handouts and on the couple's page."""


def qr_data_uri(url: str) -> str:
    """The check-in URL as a QR code (SVG data URI: the only kind of URL the renderer takes)."""
    import segno  # on first use: a web process that prints nothing never loads it

    return segno.make(url, error="m").svg_data_uri(scale=4, border=2, dark="#1f2a30")
