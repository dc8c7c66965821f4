"""SMS segment counts as a phone network bills them: GSM-7 when it can, else UCS-2."""

from __future__ import annotations

import pytest

from app.kit.sms import sms_cost


@pytest.mark.parametrize(("text", "encoding", "segments"), [
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),  # parts of 153 once split
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),  # extension characters take two septets
    ("€" * 81, "GSM-7", 2),
    ("Cyf ABCD-EFGH-JKMN. Peidiwch â dilyn dolenni." + "x" * 30, "UCS-2", 2),  # â is not in GSM-7
    ("ŵ" * 70, "UCS-2", 1),
    ("ŵ" * 71, "UCS-2", 2),  # parts of 67 once split
    ("😀" * 35, "UCS-2", 1),  # outside the BMP: two UTF-16 units each
    ("😀" * 36, "UCS-2", 2),
])
def test_segments_follow_the_encoding_a_text_needs(text: str, encoding: str, segments: int) -> None:
    cost = sms_cost(text)
    assert (cost.encoding, cost.segments) == (encoding, segments)
