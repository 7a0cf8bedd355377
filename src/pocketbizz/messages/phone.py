"""Malaysian phone numbers in the international form WhatsApp wants (`60123456789`, no "+")."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")
# After the country code: mobile 1X + 7-8 digits; fixed lines 3-9 + 7-8 digits.
_MALAYSIAN = re.compile(r"^60(1[0-9]{8,9}|[3-9][0-9]{7,8})$")


def normalise(phone: str) -> str | None:
    """`012-345 6789`, `+60 12-345 6789`, `0060123456789` → `60123456789`; None if not a
    Malaysian number."""
    digits = _SEPARATORS.sub("", phone.strip())
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    elif digits.startswith("0"):
        digits = "6" + digits  # the trunk 0 becomes the country code 60
    if not digits.isdigit():
        return None
    return digits if _MALAYSIAN.match(digits) else None
