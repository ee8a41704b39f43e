"""Uploaded images are checked by content and size and lose their metadata."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image

from core.uploads import clean_image


def jpeg_with_gps(size=(64, 48)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {2: (60.0, 10.0, 5.0), 4: (24.0, 56.0, 3.0)}  # GPSInfo: latitude, longitude
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def test_jpeg_keeps_its_pixels_and_loses_its_exif():
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif()  # the fixture really carries EXIF
    cleaned = clean_image(ContentFile(original, name="evil.php"), field="photo")
    assert cleaned.name.endswith(".jpg") and "evil" not in cleaned.name
    result = Image.open(io.BytesIO(cleaned.read()))
    assert result.size == (64, 48) and result.format == "JPEG"
    assert not result.getexif()


def test_png_text_chunks_are_dropped():
    image = Image.new("L", (10, 10), 255)
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret location")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    cleaned = clean_image(ContentFile(buffer.getvalue(), name="s.png"), field="signature")
    assert b"secret location" not in cleaned.read()


@pytest.mark.parametrize(
    "content",
    [b"%PDF-1.4 not an image", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", b"\x89PNG\r\n\x1a\n truncated"],
)
def test_non_images_and_other_formats_are_refused_naming_the_field(content):
    with pytest.raises(ValidationError) as caught:
        clean_image(ContentFile(content, name="photo.jpg"), field="photo")
    assert "photo" in caught.value.message_dict


def test_size_and_pixel_caps(settings):
    settings.UPLOAD_MAX_IMAGE_BYTES = 1000
    big = io.BytesIO()
    Image.effect_noise((200, 200), 50).save(big, format="PNG")
    with pytest.raises(ValidationError, match="larger than 1000 bytes"):
        clean_image(ContentFile(big.getvalue(), name="b.png"), field="photo")
    settings.UPLOAD_MAX_IMAGE_BYTES = 10_000_000
    settings.UPLOAD_MAX_IMAGE_PIXELS = 100
    with pytest.raises(ValidationError, match="pixels"):
        clean_image(ContentFile(big.getvalue(), name="b.png"), field="photo")
