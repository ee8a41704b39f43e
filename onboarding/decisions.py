"""The onboarding decision: reason codes in, APPROVED / MANUAL_REVIEW / ACCESS_DENIED out.

Pure (no Django), so the rule is tested and documented on its own. Which codes deny and which
send the application to a human is the organisation's policy (OnboardingPolicy.deny_codes);
a code the policy does not name goes to review, never straight to a denial or an approval.
A few codes say the checks could not be sure (REVIEW_ONLY_CODES): a person always looks,
whatever the policy.
"""

from collections.abc import Iterable
from dataclasses import dataclass

APPROVED = "APPROVED"
MANUAL_REVIEW = "MANUAL_REVIEW"
ACCESS_DENIED = "ACCESS_DENIED"

# Every code a step can report, with the plain-language text the applicant sees.
REASON_TEXT = {
    "DOC_EXPIRED": "Your identity document (or licence, insurance) has expired.",
    "MRZ_NOT_FOUND": "We could not read the machine-readable lines of your identity document.",
    "MRZ_CHECK_DIGIT": "The machine-readable lines of your identity document do not add up (check digits).",
    "MRZ_VISUAL_MISMATCH": "The printed page of your identity document does not match its machine-readable lines.",
    "MRZ_APPLICANT_MISMATCH": "The details you entered do not match your identity document.",
    "FACE_NOT_FOUND": "We could not find exactly one face on your identity document or selfie.",
    "FACE_MISMATCH": "The face in your selfie does not match the photo on your identity document.",
    "LIVENESS_FAILED": "The live selfie check did not pass (the challenge was not followed).",
    "SCREENING_CONSIDER": "Your background check needs a closer look by our team.",
    "SCREENING_SUSPENDED": "Your background check could not be completed.",
    "TAMPERING_SUSPECTED": "A document you uploaded was already used in another application.",
    "VEHICLE_NOT_FOUND": "We could not see a vehicle in your vehicle photo.",
    "VEHICLE_TYPE_MISMATCH": "The vehicle in your photo is not the type you declared.",
    "DOCUMENT_MISSING": "A required document or photo is missing.",
    "MRZ_NAME_UNCERTAIN": "The name in the machine-readable lines of your identity document could not be "
    "read with certainty; our team compares it with the details you entered.",
    "VEHICLE_PAPER_UNREADABLE": "We could not read your vehicle registration or insurance document.",
    "PLATE_MISMATCH": "The registration plate on your vehicle papers is not the one you entered.",
    "VIN_CHECK_DIGIT": "The vehicle identification number (VIN) on your registration does not add up "
    "(check digit).",
    "VIN_MISMATCH": "The vehicle identification number (VIN) on your registration is not the one you entered.",
    "LICENCE_UNREADABLE": "We could not read the barcode on the back of your driving licence.",
    "LICENCE_MISMATCH": "Your driving licence names another person (name or date of birth) than your "
    "details and identity document.",
    "PIPELINE_ERROR": "Our automatic checks could not run on your application.",
}
# Never a denial, whatever the policy: the checks could not read or be sure, or did not run.
REVIEW_ONLY_CODES = frozenset(
    {"MRZ_NAME_UNCERTAIN", "VEHICLE_PAPER_UNREADABLE", "LICENCE_UNREADABLE", "PIPELINE_ERROR"}
)
DEFAULT_DENY_CODES = frozenset({"DOC_EXPIRED", "FACE_MISMATCH", "SCREENING_SUSPENDED", "TAMPERING_SUSPECTED"})


@dataclass(frozen=True)
class Decision:
    outcome: str
    codes: list[str]
    reason: str  # plain language, for the applicant


def explain(codes: Iterable[str]) -> str:
    return " ".join(REASON_TEXT.get(code, code) for code in codes)


def decide(codes: Iterable[str], *, deny_codes: Iterable[str] = DEFAULT_DENY_CODES) -> Decision:
    """No code: approved. Any code the policy denies on: denied. Otherwise: a human reviews."""
    found = sorted(set(codes))
    if not found:
        return Decision(APPROVED, [], "All checks passed. Welcome aboard.")
    denying = [code for code in found if code in set(deny_codes) - REVIEW_ONLY_CODES]
    if denying:
        return Decision(ACCESS_DENIED, found, explain(denying))
    return Decision(MANUAL_REVIEW, found, "Our team will review your application: " + explain(found))
