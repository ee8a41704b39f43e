"""Parse, validate and repair ICAO Doc 9303 machine-readable zones (TD1, TD2, TD3, MRV-A, MRV-B).

``parse_mrz(lines)`` reads text as given (typed or pasted: a wrong check digit stays wrong).
``parse_mrz(lines, repair=True)`` is for OCR output: it uses the fixed layout and the check
digits to undo the usual misreads before validating, and lists every change it made.

Two-digit years: a birth date is put in the past (the latest century that is not in the
future); an expiry date in the 20 years ahead at most, else the century before (an expired
document still parses, with its real year).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from onboarding.verification.countries import is_icao_code

FILLER = "<"
ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
_VALUE = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")} | {FILLER: 0}
EXPIRY_YEARS_AHEAD = 20

# OCR confuses these letter/digit pairs in OCR-B; a field's type says which one it must be.
TO_DIGIT = {
    "O": "0",
    "Q": "0",
    "D": "0",
    "U": "0",
    "I": "1",
    "L": "1",
    "Z": "2",
    "S": "5",
    "B": "8",
    "G": "6",
}
TO_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G"}
# Either reading is legal in an alphanumeric field: the check digit decides.
_SWAP = {"O": "0", "0": "O", "I": "1", "1": "I", "B": "8", "8": "B", "S": "5", "5": "S", "Z": "2", "2": "Z"}
# A letter read where a digit must be, with a second likely digit for the check digit to
# choose (tesseract's English model reads OCR-B's open 4 as G about as often as it reads 6 so).
SECOND_DIGIT = {"G": "4"}
_MAX_SWAPS = 2


def check_digit(data: str) -> str:
    """ICAO 9303 check digit of ``data``: weights 7, 3, 1 repeating, ``<`` = 0, A = 10 ... Z = 35."""
    return str(sum(_VALUE[c] * (7, 3, 1)[i % 3] for i, c in enumerate(data)) % 10)


@dataclass(frozen=True)
class _Field:
    line: int
    start: int
    end: int
    kind: str  # "A" letters, "N" digits, "AN" either, "S" sex, "NAME"


@dataclass(frozen=True)
class _Check:
    line: int
    pos: int
    spans: tuple[tuple[int, int, int], ...]
    filler_ok: bool = False  # ICAO lets an unused optional field have "<" as its check digit


@dataclass(frozen=True)
class _Layout:
    doc_type: str
    line_count: int
    length: int
    fields: dict[str, _Field]
    checks: dict[str, _Check]


def _two_line(doc_type: str, length: int, *, composite: bool, personal: bool) -> _Layout:
    optional_end = length - (1 if composite else 0) - (1 if personal else 0)
    fields = {
        "document_code": _Field(0, 0, 2, "A"),
        "issuing_state": _Field(0, 2, 5, "A"),
        "name": _Field(0, 5, length, "NAME"),
        "document_number": _Field(1, 0, 9, "AN"),
        "nationality": _Field(1, 10, 13, "A"),
        "birth_date": _Field(1, 13, 19, "N"),
        "sex": _Field(1, 20, 21, "S"),
        "expiry_date": _Field(1, 21, 27, "N"),
        "optional_data": _Field(1, 28, optional_end, "AN"),
    }
    checks = {
        "document_number": _Check(1, 9, ((1, 0, 9),)),
        "birth_date": _Check(1, 19, ((1, 13, 19),)),
        "expiry_date": _Check(1, 27, ((1, 21, 27),)),
    }
    if personal:
        checks["personal_number"] = _Check(1, optional_end, ((1, 28, optional_end),), filler_ok=True)
    if composite:
        checks["composite"] = _Check(1, length - 1, ((1, 0, 10), (1, 13, 20), (1, 21, length - 1)))
    return _Layout(doc_type, 2, length, fields, checks)


LAYOUTS = {
    "TD1": _Layout(
        "TD1",
        3,
        30,
        {
            "document_code": _Field(0, 0, 2, "A"),
            "issuing_state": _Field(0, 2, 5, "A"),
            "document_number": _Field(0, 5, 14, "AN"),
            "optional_data": _Field(0, 15, 30, "AN"),
            "birth_date": _Field(1, 0, 6, "N"),
            "sex": _Field(1, 7, 8, "S"),
            "expiry_date": _Field(1, 8, 14, "N"),
            "nationality": _Field(1, 15, 18, "A"),
            "optional_data_2": _Field(1, 18, 29, "AN"),
            "name": _Field(2, 0, 30, "NAME"),
        },
        {
            "document_number": _Check(0, 14, ((0, 5, 14),)),
            "birth_date": _Check(1, 6, ((1, 0, 6),)),
            "expiry_date": _Check(1, 14, ((1, 8, 14),)),
            "composite": _Check(1, 29, ((0, 5, 30), (1, 0, 7), (1, 8, 15), (1, 18, 29))),
        },
    ),
    "TD2": _two_line("TD2", 36, composite=True, personal=False),
    "TD3": _two_line("TD3", 44, composite=True, personal=True),
    "MRV-A": _two_line("MRV-A", 44, composite=False, personal=False),
    "MRV-B": _two_line("MRV-B", 36, composite=False, personal=False),
}


@dataclass(frozen=True)
class MrzResult:
    """A parsed MRZ. ``valid``: every check digit holds and both country codes are ICAO codes;
    ``reasons`` says in plain words why not. ``corrections`` lists what ``repair`` changed;
    ``warnings`` notes what does not affect validity (an impossible date)."""

    doc_type: str | None
    lines: list[str]
    fields: dict[str, str | None]
    checks: dict[str, bool]
    valid: bool
    reasons: list[str]
    document_code: str = ""
    optional_data: str = ""
    corrections: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def name_field(self) -> str:
        """The name as the MRZ holds it (``SURNAME<<GIVEN<NAMES<<<``), fillers and all."""
        if self.doc_type is None or len(self.lines) != LAYOUTS[self.doc_type].line_count:
            return ""
        return _text(self.lines, LAYOUTS[self.doc_type].fields["name"])

    @property
    def name_repaired(self) -> bool:
        """Did ``repair`` turn letters of the name line back into fillers (a filler read as K)?"""
        return any(
            c.startswith(f"line {3 if self.doc_type == 'TD1' else 1}: K read") for c in self.corrections
        )

    def as_dict(self) -> dict:
        """The JSON contract of ``check_mrz`` / ``read_mrz``."""
        return {
            "doc_type": self.doc_type,
            "lines": list(self.lines),
            "fields": dict(self.fields),
            "checks": dict(self.checks),
            "valid": self.valid,
            "reasons": list(self.reasons),
        }


EMPTY_FIELDS = dict.fromkeys(
    (
        "document_number",
        "surname",
        "given_names",
        "nationality",
        "issuing_state",
        "birth_date",
        "expiry_date",
        "sex",
    )
)


# What OCR makes of a filler "<" in OCR-B (and the letters it mistakes for one).
FILLER_LOOK_ALIKES = frozenset("KCXL")


def name_as_mrz(surname: str, given_names: str) -> str:
    """A name as an MRZ writes it: ``SURNAME<<GIVEN<NAMES``, A-Z only (accents dropped,
    spaces and hyphens as fillers)."""

    def part(text: str) -> str:
        plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
        return "<".join(re.sub(r"[^A-Z]+", " ", plain).split())

    return f"{part(surname)}<<{part(given_names)}"


def fillers_misread(name_field: str, surname: str, given_names: str) -> bool:
    """Could ``name_field`` (an MRZ's) be this name with fillers read as letters that look
    like one, some doubled or dropped ("VIRTANENK<<BARACKK<KCK<<<" for Virtanen, Barack)?
    True only if the two differ, and the name's words all stand in order with nothing but
    fillers and such letters around and between them: an OCR misreading, not another name."""
    words = name_as_mrz(surname, given_names).replace(FILLER, " ").split()
    if not words or name_field.rstrip(FILLER) == name_as_mrz(surname, given_names):
        return False
    noise = "[" + "".join(sorted(FILLER_LOOK_ALIKES)) + FILLER + "]"
    pattern = f"{noise}*" + f"{noise}+".join(words) + f"{noise}*"
    return re.fullmatch(pattern, name_field) is not None


def detect_doc_type(lines: Sequence[str]) -> str | None:
    """TD1 for three lines; for two, TD2/MRV-B (36) or TD3/MRV-A (44) by the longer line's
    nearest length, a visa when the document code starts with V. None if it cannot be an MRZ
    (another number of lines, or lines far too short)."""
    if len(lines) not in (2, 3):
        return None
    longest = max(len(line) for line in lines)
    if len(lines) == 3:
        return "TD1" if longest >= 20 else None
    if longest < 30:
        return None
    is_visa = lines[0][:1] == "V"
    if longest <= 40:
        return "MRV-B" if is_visa else "TD2"
    return "MRV-A" if is_visa else "TD3"


def parse_mrz(lines: Sequence[str], *, repair: bool = False, today: date | None = None) -> MrzResult:
    """Parse and validate an MRZ given as its 2 or 3 lines.

    With ``repair=False`` the text is taken as it is (only surrounding whitespace dropped).
    With ``repair=True`` (OCR output) the lines are upper-cased, spaces dropped, padded or cut
    to the layout's length, letters/digits coerced by field type, and ambiguous characters in
    alphanumeric fields (O/0, I/1, B/8, S/5, Z/2) swapped where that makes a check digit hold.
    """
    today = today or date.today()
    lines = [line.strip() for line in lines if line.strip()]
    corrections: list[str] = []
    if repair:
        normalised = [_normalise(line) for line in lines]
        corrections += [
            f"line {number}: K read between fillers -> <"
            for number, (before, after) in enumerate(zip(lines, normalised, strict=True), start=1)
            if before.upper().count("K") != after.count("K")
        ]
        lines = normalised
    doc_type = detect_doc_type(lines)
    if doc_type is None:
        return MrzResult(
            None,
            lines,
            dict(EMPTY_FIELDS),
            {},
            False,
            ["not an MRZ: expected 3 lines of 30 characters, or 2 lines of 36 or 44"],
        )
    layout = LAYOUTS[doc_type]
    reasons: list[str] = []
    repair_warnings: list[str] = []
    if repair:
        lines = _repair(lines, layout, corrections, repair_warnings)
    for number, line in enumerate(lines, start=1):
        if len(line) != layout.length:
            reasons.append(f"line {number} has {len(line)} characters; {doc_type} needs {layout.length}")
        bad = sorted(set(line) - ALPHABET)
        if bad:
            reasons.append(f"line {number} has characters an MRZ cannot hold: {''.join(bad)}")
    if reasons:
        return MrzResult(
            doc_type,
            lines,
            dict(EMPTY_FIELDS),
            {},
            False,
            reasons,
            corrections=corrections,
            warnings=repair_warnings,
        )

    checks = {name: _check_holds(lines, layout, name) for name in layout.checks}
    reasons += [
        f"the {name.replace('_', ' ')} check digit does not match" for name, ok in checks.items() if not ok
    ]
    fields, warnings = _fields(lines, layout, today)
    for name in ("issuing_state", "nationality"):
        if not is_icao_code(fields[name] or ""):
            reasons.append(
                f"{name.replace('_', ' ')} {fields[name] or '(empty)'!r} is not an ICAO country code"
            )
    return MrzResult(
        doc_type,
        lines,
        fields,
        checks,
        not reasons,
        reasons,
        document_code=_text(lines, layout.fields["document_code"]).replace(FILLER, ""),
        optional_data=_optional_data(lines, layout),
        corrections=corrections,
        warnings=repair_warnings + warnings,
    )


def _text(lines: Sequence[str], f: _Field) -> str:
    return lines[f.line][f.start : f.end]


def _document_number(lines: Sequence[str], layout: _Layout) -> tuple[str, str]:
    """The number and its check digit. TD1/TD2 numbers longer than 9 characters put ``<`` in the
    check position and continue in the optional data, ending with their check digit."""
    f = layout.fields["document_number"]
    head = _text(lines, f)
    digit = lines[f.line][layout.checks["document_number"].pos]
    if digit == FILLER and layout.doc_type in ("TD1", "TD2"):
        tail = _text(lines, layout.fields["optional_data"]).split(FILLER, 1)[0]
        if tail:
            return head + tail[:-1], tail[-1]
    return head, digit


def _check_holds(lines: Sequence[str], layout: _Layout, name: str) -> bool:
    check = layout.checks[name]
    if name == "document_number":
        data, digit = _document_number(lines, layout)
    else:
        data = "".join(lines[line][start:end] for line, start, end in check.spans)
        digit = lines[check.line][check.pos]
    if digit == FILLER:
        return check.filler_ok and set(data) <= {FILLER}
    return digit.isdigit() and check_digit(data) == digit


def _fields(lines: Sequence[str], layout: _Layout, today: date) -> tuple[dict[str, str | None], list[str]]:
    warnings: list[str] = []
    name = _text(lines, layout.fields["name"])
    surname, _, given = name.partition("<<")
    dates: dict[str, str | None] = {}
    for key in ("birth_date", "expiry_date"):
        raw = _text(lines, layout.fields[key])
        dates[key] = _iso_date(raw, key, today)
        if dates[key] is None:
            warnings.append(f"{key.replace('_', ' ')} {raw!r} is not a date")
    sex = _text(lines, layout.fields["sex"])
    number = _document_number(lines, layout)[0]
    return {
        "document_number": number.replace(FILLER, ""),
        "surname": " ".join(surname.replace(FILLER, " ").split()),
        "given_names": " ".join(given.replace(FILLER, " ").split()),
        "nationality": _text(lines, layout.fields["nationality"]).replace(FILLER, ""),
        "issuing_state": _text(lines, layout.fields["issuing_state"]).replace(FILLER, ""),
        "birth_date": dates["birth_date"],
        "expiry_date": dates["expiry_date"],
        "sex": "X" if sex == FILLER else sex,
    }, warnings


def _optional_data(lines: Sequence[str], layout: _Layout) -> str:
    parts = [
        _text(lines, layout.fields[key])
        for key in ("optional_data", "optional_data_2")
        if key in layout.fields
    ]
    return " ".join(part.strip(FILLER) for part in parts if part.strip(FILLER))


def _iso_date(raw: str, key: str, today: date) -> str | None:
    """YYMMDD to ISO; the century as the module docstring says."""
    if not (len(raw) == 6 and raw.isdigit()):
        return None
    yy, month, day = int(raw[:2]), int(raw[2:4]), int(raw[4:])
    try:
        if key == "birth_date":
            value = date(2000 + yy, month, day)
            if value > today:
                value = date(1900 + yy, month, day)
        else:
            year = 2000 + yy if 2000 + yy <= today.year + EXPIRY_YEARS_AHEAD else 1900 + yy
            value = date(year, month, day)
    except ValueError:
        return None
    return value.isoformat()


# --- repair (OCR output) -------------------------------------------------------------------


def _normalise(line: str) -> str:
    """Upper-case, no spaces, ``<`` for anything outside the MRZ alphabet, and ``<`` for a K
    standing between fillers (tesseract's usual misreading of a chevron in a run)."""
    line = "".join(line.upper().split())
    line = "".join(c if c in ALPHABET else FILLER for c in line.replace("«", FILLER))
    return re.sub(r"(?<=<)K+(?=<|.?$)", lambda m: FILLER * len(m.group()), line)


def _repair(lines: list[str], layout: _Layout, corrections: list[str], warnings: list[str]) -> list[str]:
    rows = [list(_fit(line, layout.length)) for line in lines]
    for number, before in enumerate(lines, start=1):
        if len(before) != layout.length:
            corrections.append(f"line {number}: {len(before)} characters fitted to {layout.length}")

    def put(line: int, pos: int, char: str, why: str) -> None:
        if rows[line][pos] != char:
            corrections.append(f"line {line + 1} position {pos + 1}: {rows[line][pos]} -> {char} ({why})")
            rows[line][pos] = char

    code = rows[0][0]
    if layout.doc_type in ("TD1", "TD2") and code not in "IAC" and code in TO_LETTER | {"L": "I", "T": "I"}:
        put(0, 0, "I", "an ID card's document code starts with I, A or C")
    alternatives: dict[tuple[int, int], str] = {}  # position -> the other reading to try

    def to_digit(line: int, pos: int, why: str) -> None:
        char = rows[line][pos]
        if char in TO_DIGIT:
            if char in SECOND_DIGIT:
                alternatives[(line, pos)] = SECOND_DIGIT[char]
            put(line, pos, TO_DIGIT[char], why)

    for name, f in layout.fields.items():
        for pos in range(f.start, f.end):
            if f.kind == "N":
                to_digit(f.line, pos, f"{name} is numeric")
            elif f.kind in ("A", "NAME") and rows[f.line][pos] in TO_LETTER:
                put(f.line, pos, TO_LETTER[rows[f.line][pos]], f"{name} is alphabetic")
    for name, check in layout.checks.items():
        to_digit(check.line, check.pos, f"{name} check digit is numeric")
    _prefer_zeros(rows, layout, put)
    for line, pos in _alphanumeric_positions(layout):
        if rows[line][pos] in _SWAP:
            alternatives.setdefault((line, pos), _SWAP[rows[line][pos]])
    # Per-field checks first (they pin their own fields), then the composite over the rest.
    for name in sorted(layout.checks, key=lambda n: n == "composite"):
        current = ["".join(row) for row in rows]
        if _check_holds(current, layout, name):
            continue
        positions = _ambiguous_positions(layout, name, alternatives)
        fixed = _search_swaps(current, layout, name, positions, alternatives)
        if fixed is not None:
            for line, pos in fixed:
                put(
                    line,
                    pos,
                    alternatives[(line, pos)],
                    f"makes the {name.replace('_', ' ')} check digit hold",
                )
                alternatives.pop((line, pos))
                if (line, pos) == (layout.checks[name].line, layout.checks[name].pos):
                    warnings.append(
                        f"the {name.replace('_', ' ')} check digit was unreadable and is taken from its data: "
                        "a person should compare it with the document"
                    )
    return ["".join(row) for row in rows]


def _prefer_zeros(rows: list[list[str]], layout: _Layout, put) -> None:
    """OCR reads OCR-B's narrow 0 as O or Q. Letters issuers avoid in document numbers for
    that very reason: an O or Q touching a digit in the number becomes 0 when the number's
    check digit still holds (the check digit cannot tell them apart in every position)."""
    f = layout.fields["document_number"]
    row = rows[f.line]
    trial = row[f.start : f.end]
    changed = True
    while changed:
        changed = False
        for i, char in enumerate(trial):
            touching = [trial[j] for j in (i - 1, i + 1) if 0 <= j < len(trial)]
            if char in "OQ" and any(c.isdigit() for c in touching):
                trial[i], changed = "0", True
    before = ["".join(r) for r in rows]
    after = [*before]
    after[f.line] = "".join(row[: f.start] + trial + row[f.end :])
    if after != before and _check_holds(after, layout, "document_number"):
        for pos, char in enumerate(trial, start=f.start):
            put(f.line, pos, char, "an O or Q among digits in the document number")


def _fit(line: str, length: int) -> str:
    """Fit a line to its layout's length in its longest run of fillers, where OCR loses or
    doubles chevrons (so a check digit after the run stays in place); cut or pad at the right
    end when the line has no run of fillers."""
    runs = list(re.finditer(r"<{2,}", line))
    if runs and len(line) != length:
        run = max(runs, key=lambda m: (len(m.group()), m.start()))
        size = max(1, len(run.group()) + length - len(line))
        line = line[: run.start()] + FILLER * size + line[run.end() :]
    return (line + FILLER * length)[:length]


def _alphanumeric_positions(layout: _Layout) -> set[tuple[int, int]]:
    return {(f.line, pos) for f in layout.fields.values() if f.kind == "AN" for pos in range(f.start, f.end)}


def _ambiguous_positions(
    layout: _Layout, name: str, alternatives: dict[tuple[int, int], str]
) -> list[tuple[int, int]]:
    """Positions covered by the check ``name`` (its check digit included) with another
    plausible reading."""
    check = layout.checks[name]
    covered = {(line, pos) for line, start, end in check.spans for pos in range(start, end)}
    if name == "document_number":
        f = layout.fields["document_number"]
        covered = {(f.line, pos) for pos in range(f.start, f.end)}
    covered.add((check.line, check.pos))
    if name == "composite":  # leave what a field's own check digit already vouches for
        for other in layout.checks:
            if other != "composite":
                covered -= set(_ambiguous_positions(layout, other, alternatives))
    return sorted(p for p in covered if p in alternatives)


def _search_swaps(
    lines: Sequence[str],
    layout: _Layout,
    name: str,
    positions: list[tuple[int, int]],
    alternatives: dict[tuple[int, int], str],
) -> tuple[tuple[int, int], ...] | None:
    """The fewest swaps (up to ``_MAX_SWAPS``) that make check ``name`` hold; None when no
    single smallest set does (two different fixes would be a guess)."""
    for count in range(1, min(_MAX_SWAPS, len(positions)) + 1):
        found = []
        for combo in itertools.combinations(positions, count):
            trial = [list(line) for line in lines]
            for line, pos in combo:
                trial[line][pos] = alternatives[(line, pos)]
            if _check_holds(["".join(t) for t in trial], layout, name):
                found.append(combo)
        if len(found) == 1:
            return found[0]
        if found:
            return None
    return None
