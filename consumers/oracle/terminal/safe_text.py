"""Text from records made safe to print in a terminal: no control characters, no markup.

A record's strings come from the floor: whatever a tester, a file or a producer put
there. Printed raw, an escape sequence in a measurement name could clear the screen,
move the cursor over the card or retitle the window; read as rich markup, a name like
``[/bold]`` closes a style nobody opened and the print raises. So every string that
comes from a record goes through ``printable`` and into a ``rich.text.Text``, which rich
never parses for markup or emoji codes.

Control characters are *shown*, not dropped (ESC as ␛, a newline as ␊): two names that
differ only in one stay told apart, and the engineer sees that the record is odd.

>>> printable("vdd\\x1b[2J")
'vdd␛[2J'
>>> safe("[/bold]").plain
'[/bold]'
"""

from __future__ import annotations

import re
from typing import Final

from rich.style import StyleType
from rich.text import Text

#: C0, DEL, C1, and the bidirectional overrides/isolates that reorder what is shown.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_C0_PICTURES: Final = 0x2400  # U+2400.. picture the 32 C0 characters in order
_DEL_PICTURE: Final = "\u2421"
_NO_PICTURE: Final = "\ufffd"


def printable(value: object) -> str:
    """``str(value)`` with every control character replaced by a visible stand-in."""
    return _CONTROL.sub(_picture, str(value))


def safe(value: object, style: StyleType = "") -> Text:
    """``value`` as printable Text in ``style``: shown exactly, never interpreted."""
    return Text(printable(value), style)


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(_C0_PICTURES + code)
    return _DEL_PICTURE if code == 0x7F else _NO_PICTURE
