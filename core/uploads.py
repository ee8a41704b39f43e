"""Uploaded images (proof-of-delivery photos and signatures, later ID documents).

Checked by content, not by name or declared type; size- and pixel-capped before decoding
(decompression bombs); re-encoded from the pixels alone, so EXIF (GPS, device) and other
metadata never reach storage.
"""

import io
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

# Decoded format -> (extension, save options).
ALLOWED_FORMATS = {
    "JPEG": ("jpg", {"quality": 88, "optimize": True}),
    "PNG": ("png", {"optimize": True}),
    "WEBP": ("webp", {"quality": 88}),
}


def clean_image(upload, *, field: str) -> ContentFile:
    """A safe copy of an uploaded image, or ValidationError naming `field`."""
    max_bytes = settings.UPLOAD_MAX_IMAGE_BYTES
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise ValidationError({field: f"The image is larger than {max_bytes} bytes."})
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValidationError({field: f"The image is larger than {max_bytes} bytes."})
    try:
        with Image.open(io.BytesIO(data)) as probe:
            image_format = probe.format
            width, height = probe.size
            probe.verify()
        if image_format not in ALLOWED_FORMATS:
            raise ValidationError({field: "Upload a JPEG, PNG or WebP image."})
        if width * height > settings.UPLOAD_MAX_IMAGE_PIXELS:
            raise ValidationError(
                {field: f"The image has more than {settings.UPLOAD_MAX_IMAGE_PIXELS} pixels."}
            )
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            pixels = Image.frombytes(upright.mode, upright.size, upright.tobytes())
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError({field: "This is not a readable image."}) from exc
    if image_format == "JPEG" and pixels.mode not in ("RGB", "L"):
        pixels = pixels.convert("RGB")
    extension, options = ALLOWED_FORMATS[image_format]
    buffer = io.BytesIO()
    pixels.save(buffer, format=image_format, **options)
    return ContentFile(buffer.getvalue(), name=f"{uuid.uuid4().hex}.{extension}")
