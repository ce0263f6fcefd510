"""What is taken out of text from outside (Prism's names, messages) before it is logged or written."""
from __future__ import annotations

import re

# C0 and C1 controls, zero-width and bidi overrides: no log or console forging.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")
