"""Image loading shared by the verification engines: any of a path, bytes, a PIL image or an
array in, an upright RGB array out, or ``UnreadableImage`` with a one-line reason."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageSource = str | Path | bytes | Image.Image | np.ndarray


class UnreadableImage(ValueError):
    """The input is not an image this code can decode (the message says why, in one line)."""


def load_rgb(source: ImageSource) -> np.ndarray:
    """RGB ``uint8`` array (height, width, 3). Phone photos are turned upright from their EXIF
    orientation, so a selfie taken sideways is read the way it was seen."""
    if isinstance(source, np.ndarray):
        array = source if source.ndim == 3 else np.stack([source] * 3, axis=-1)
        return np.ascontiguousarray(array[..., :3], dtype=np.uint8)
    try:
        if isinstance(source, Image.Image):
            image = source
        elif isinstance(source, bytes):
            image = Image.open(io.BytesIO(source))
        else:
            image = Image.open(Path(source))
        image = ImageOps.exif_transpose(image)
        return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise UnreadableImage(f"no such file: {source}")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise UnreadableImage(f"not a readable image: {error}")


def resize_longest(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Scale so the longest side is ``side`` pixels; returns the image and the scale applied."""
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    if scale == 1:
        return rgb, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS)), scale
