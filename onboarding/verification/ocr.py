"""Read an ID document photo: the MRZ (tesseract, then ``mrz`` repair) and the visual zone.

Finding the MRZ (after PassportEye's idea, in OpenCV): at a working width of 800 px a black-hat
transform keeps dark print on a light ground, Otsu binarises it, a wide closing joins the
characters of a line into one bar. MRZ lines are the long bars (at least 40 % of the width, 8
times longer than high) that come in a run of 2 or 3 aligned, evenly spaced lines; runs are
tried from the bottom of the page up.

Reading it: the band is cut from the full-resolution image and OCR-ed by tesseract (LSTM,
English model, character whitelist ``A-Z0-9<``, dictionaries off) in a few ``VARIANTS``,
and each reading is repaired with the layout and check digits. The first clean reading
(valid, every line read at its length, no K or X beside a chevron) is taken; else
the lines of all readings are combined: per line the candidate that makes the check digits
hold, between equals the one most readings agree on (names have no check digit).
"""

from __future__ import annotations

import itertools
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

import cv2
import numpy as np
import pytesseract

from onboarding.verification.images import ImageSource, load_rgb
from onboarding.verification.mrz import MrzResult, detect_doc_type, parse_mrz

WORKING_WIDTH = 800
# How the band is handed to tesseract, in the order tried: binarised ("otsu"), as it is
# ("grey"), or binarised with the ink thinned a pixel ("thin", which parts chevrons that
# bleed into each other); and the height of a line in pixels.
VARIANTS = (
    ("otsu", 28), ("otsu", 20), ("otsu", 36), ("grey", 28), ("grey", 20), ("grey", 36), ("thin", 28), ("thin", 36),
)  # fmt: skip
MAX_RUNS = 3  # candidate line runs tried, lowest on the page first (bounds the time on a text page)
# tesseract starts one OpenMP thread per core by default, and on an image as small as an MRZ
# band the threads spin more than they work: 0.45 s a read with them, 0.15 s with one, on 2
# cores (a worker runs one pipeline per core anyway). pytesseract hands this process's
# environment to tesseract, so the limit is set here, unless the operator has chosen one.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
MRZ_CONFIG = (
    "--psm 6 -c tessedit_char_whitelist=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789< "
    "-c load_system_dawg=0 -c load_freq_dawg=0"
)


_LOOK_ALIKE = re.compile(r"<[KX]|[KX]<")  # a chevron tesseract read as K or X, or a real name's K/X


class NoMrzFound(ValueError):
    """No machine-readable zone could be found or read in the image."""


@dataclass(frozen=True)
class _Line:
    x: int
    y: int
    width: int
    height: int


def _text_lines(gray: np.ndarray) -> tuple[list[_Line], float]:
    """Long text lines at the working width, top to bottom, and the scale to get there."""
    scale = WORKING_WIDTH / gray.shape[1]
    small = cv2.resize(
        gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    )
    dark = cv2.morphologyEx(small, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (25, 11)))
    mask = cv2.threshold(dark, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (25, 1)))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (15, 3)))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    lines = [
        _Line(int(x), int(y), int(w), int(h))
        for x, y, w, h, area in stats[1:count]
        if w > 0.4 * WORKING_WIDTH and w > 8 * h and h >= 4 and area > 0.3 * w * h
    ]
    return sorted(lines, key=lambda line: line.y), scale


def _runs(lines: list[_Line]) -> list[list[_Line]]:
    """Runs of 3 or 2 aligned, evenly spaced lines of one size, the lowest on the page first."""
    runs = []
    for size in (3, 2):
        for start in range(len(lines) - size + 1):
            run = lines[start : start + size]
            heights = [line.height for line in run]
            gaps = [b.y - a.y for a, b in itertools.pairwise(run)]
            aligned = max(line.x for line in run) - min(line.x for line in run) < 0.05 * WORKING_WIDTH
            alike = max(line.width for line in run) < 1.15 * min(line.width for line in run)
            spaced = all(max(heights) * 0.9 < gap < max(heights) * 3 for gap in gaps)
            if aligned and alike and spaced and max(heights) < 2 * min(heights):
                runs.append(run)
    return sorted(runs, key=lambda run: (-run[-1].y, -len(run)))


def _band(gray: np.ndarray, run: list[_Line], scale: float) -> tuple[np.ndarray, float]:
    """The run's band cut from the full image with a margin, and its line height there."""
    height = float(np.median([line.height for line in run])) / scale
    x0 = min(line.x for line in run) / scale
    x1 = max(line.x + line.width for line in run) / scale
    y0, y1 = run[0].y / scale, (run[-1].y + run[-1].height) / scale
    margin = height
    top, bottom = max(0, int(y0 - margin)), min(gray.shape[0], int(y1 + margin))
    left, right = max(0, int(x0 - margin)), min(gray.shape[1], int(x1 + margin))
    return gray[top:bottom, left:right], height


def _ocr_band(band: np.ndarray, line_height: float, text_height: int, mode: str) -> list[str]:
    factor = text_height / line_height
    image = cv2.resize(band, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    if mode in ("otsu", "thin"):
        image = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]
    if mode == "thin":
        image = cv2.dilate(image, np.ones((2, 2), np.uint8))  # white grows: dark strokes thin
    image = cv2.copyMakeBorder(image, 10, 10, 10, 10, cv2.BORDER_CONSTANT, value=255)
    text = pytesseract.image_to_string(image, lang="eng", config=MRZ_CONFIG)
    return ["".join(line.split()) for line in text.splitlines() if len("".join(line.split())) >= 20]


def _score(result: MrzResult, raw: list[str]) -> tuple:
    """Valid first, then check digits holding, lines read at their exact length, fewest
    chevrons read as K or X, fewest repairs."""
    look_alikes = sum(len(_LOOK_ALIKE.findall(line)) for line in raw)
    exact_lengths = sum(len(line) == len(result.lines[0]) for line in raw)
    return (result.valid, sum(result.checks.values()), exact_lengths, -look_alikes, -len(result.corrections))


def _combine(readings: list[tuple[MrzResult, list[str]]], today: date | None) -> MrzResult:
    """Each line from whichever reading makes the check digits hold; between equals, the one
    with fewest K or X beside a chevron, then the line most readings agree on, a reading at
    the layout's exact length counting double (how a name line, which has no check digit, is
    chosen). A line whose check digit its reading had to infer keeps that reading's warning."""
    votes: list[Counter] = [Counter() for _ in readings[0][0].lines]
    inferred: dict[str, list[str]] = {}
    for result, raw in readings:
        for count, line, raw_line in zip(votes, result.lines, raw, strict=True):
            count[line] += 2 if len(raw_line) == len(line) else 1
            if result.warnings:
                inferred.setdefault(line, [w for w in result.warnings if "check digit" in w])
    best: tuple[tuple, MrzResult] | None = None
    for lines in itertools.product(*([line for line, _ in count.most_common(3)] for count in votes)):
        result = parse_mrz(list(lines), repair=True, today=today)
        agreement = sum(count[line] for count, line in zip(votes, lines, strict=True))
        look_alikes = sum(len(_LOOK_ALIKE.findall(line)) for line in lines)
        key = (result.valid, sum(result.checks.values()), -look_alikes, agreement, -len(result.corrections))
        if best is None or key > best[0]:
            best = (key, result)
    result = best[1]
    carried = list(
        dict.fromkeys(w for line in result.lines for w in inferred.get(line, []) if w not in result.warnings)
    )
    return replace(result, warnings=[*result.warnings, *carried]) if carried else result


def read_mrz(source: ImageSource, *, today: date | None = None) -> MrzResult:
    """Find and read the MRZ in a photo or scan of an ID document, repaired and validated;
    a document photographed sideways or upside down is turned until its MRZ reads.
    Raises ``NoMrzFound`` (and ``UnreadableImage`` for a file that is no image)."""
    gray = cv2.cvtColor(load_rgb(source), cv2.COLOR_RGB2GRAY)
    for rotation in (None, cv2.ROTATE_180, cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE):
        result = _read_upright(gray if rotation is None else cv2.rotate(gray, rotation), today)
        if result is not None:
            return result
    raise NoMrzFound("no machine-readable zone found in the image")


def _read_upright(gray: np.ndarray, today: date | None) -> MrzResult | None:
    lines, scale = _text_lines(gray)
    for run in _runs(lines)[:MAX_RUNS]:
        band, line_height = _band(gray, run, scale)
        readings: list[tuple[MrzResult, list[str]]] = []
        for variant, (mode, text_height) in enumerate(VARIANTS):
            raw = _ocr_band(band, line_height, text_height, mode)[-len(run) :]
            if variant == 0 and "<" not in "".join(raw):
                break  # every MRZ line has fillers: this is other text (or upside down)
            if len(raw) != len(run) or detect_doc_type(raw) is None:
                continue
            result = parse_mrz(raw, repair=True, today=today)
            score = _score(result, raw)
            if result.valid and score[2] == len(run) and score[3] == 0:
                return result
            readings.append((result, raw))
        if readings:  # this run reads as an MRZ: the best that can be made of it
            if len({result.doc_type for result, _ in readings}) == 1:
                return _combine(readings, today)
            return max(readings, key=lambda reading: _score(*reading))[0]
    return None


# --- visual zone ---------------------------------------------------------------------------


def read_visual_zone(source: ImageSource) -> str:
    """The page's printed text (tesseract, English, automatic layout), for cross-checks."""
    rgb = load_rgb(source)
    if max(rgb.shape[:2]) < 1200:
        factor = 1200 / max(rgb.shape[:2])
        rgb = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    return pytesseract.image_to_string(rgb, lang="eng", config="--psm 3")


@dataclass(frozen=True)
class Mismatch:
    """One field that disagrees between the sources compared."""

    field: str
    values: dict[str, str]
    reason: str


def _fold(text: str) -> str:
    """Upper-case ASCII letters and digits only: how an MRZ spells a printed name."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Z0-9]+", " ", plain.upper()).strip()


def _tokens(text: str) -> set[str]:
    return set(_fold(text).split())


def cross_check(
    mrz_fields: Mapping[str, str | None],
    *,
    declared: Mapping[str, str | None] | None = None,
    visual_text: str | None = None,
) -> list[Mismatch]:
    """Compare the MRZ with what the applicant declared and with the printed page.

    ``declared`` uses the MRZ's field names (surname, given_names, birth_date as ISO,
    document_number, nationality, sex...); names compare accent- and case-free (the MRZ
    transliterates). ``visual_text`` (from ``read_visual_zone``; its MRZ-shaped lines are
    left out) is checked to contain the MRZ's document number and each of its name words.
    Empty list = everything agrees.
    """
    mismatches: list[Mismatch] = []
    for name, value in (declared or {}).items():
        if value in (None, "") or name not in mrz_fields:
            continue
        mrz_value = mrz_fields[name] or ""
        same = _fold(str(value)) == _fold(mrz_value)
        if name in ("surname", "given_names"):
            same = _tokens(str(value)) == _tokens(mrz_value)
        if not same:
            mismatches.append(
                Mismatch(
                    name,
                    {"mrz": mrz_value, "declared": str(value)},
                    f"the declared {name.replace('_', ' ')} is not the document's",
                )
            )
    if visual_text is not None:
        # the page's own MRZ would vouch for itself: leave out lines shaped like one
        page = [
            line
            for line in visual_text.splitlines()
            if "<" not in line and "«" not in line and not re.search(r"\S{28,}", line)
        ]
        printed = _fold("\n".join(page))
        printed_words = set(printed.split())
        number = mrz_fields.get("document_number") or ""
        if number and number not in printed.replace(" ", ""):
            mismatches.append(
                Mismatch(
                    "document_number",
                    {"mrz": number},
                    "the MRZ's document number is not printed on the page",
                )
            )
        for name in ("surname", "given_names"):
            missing = sorted(_tokens(mrz_fields.get(name) or "") - printed_words)
            if missing:
                mismatches.append(
                    Mismatch(
                        name,
                        {"mrz": mrz_fields.get(name) or "", "missing": " ".join(missing)},
                        f"the MRZ's {name.replace('_', ' ')} is not printed on the page",
                    )
                )
    return mismatches


def compare_holder(licence: Mapping[str, str | None], other: Mapping[str, str | None]) -> list[str]:
    """Is a licence's holder the person ``other`` (declared details or an MRZ) names? The
    surname's words and the birth date must agree; the given names may leave out middle
    names on either side (one's words within the other's). Fields missing on a side are
    not compared. Returns a reason per disagreement."""
    reasons = []
    for name, middle_names_optional in (("surname", False), ("given_names", True)):
        on_licence, elsewhere = licence.get(name) or "", other.get(name) or ""
        if not (on_licence and elsewhere):
            continue
        a, b = _tokens(on_licence), _tokens(elsewhere)
        if a != b and not (middle_names_optional and (a <= b or b <= a)):
            reasons.append(f"{name.replace('_', ' ')} {on_licence!r} on the licence, {elsewhere!r} elsewhere")
    born = licence.get("birth_date") or "", str(other.get("birth_date") or "")
    if all(born) and born[0] != born[1]:
        reasons.append(f"birth date {born[0]} on the licence, {born[1]} elsewhere")
    return reasons
