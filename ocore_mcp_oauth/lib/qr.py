"""QR codes of the device flow's verification URL: drawn with text characters for a terminal (the
device authorization response) and as inline SVG for the device page (``qrcode`` library)."""

import io


def terminal_qr(text):
    """A QR code of ``text`` drawn with text characters, for a terminal (``qrcode`` library)."""
    import qrcode

    qr = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(text)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()


def svg_qr(text):
    """A QR code of ``text`` as an inline SVG document (``qrcode`` library)."""
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    out = io.BytesIO()
    img.save(out)
    svg = out.getvalue().decode()
    return svg[svg.index("<svg"):]  # without the XML declaration, to inline it in HTML
