"""The shapes notify settings may take: checked when a config file is read (envy/config.py).

A user's config lives on the share, which anybody in the lab may write: a
webhook is http(s) only (no file:, no ftp:), e-mail addresses are plain
``name@domain`` without spaces, commas or angle brackets (nothing that could
add a header or a recipient), and the lists are short.
"""

from __future__ import annotations

import re
from typing import Any

from envy.settings.kinds import Source

WEBHOOK_URL = re.compile(r"(?i)^https?://[A-Za-z0-9.\-\[\]:]+(?:/[^\s]*)?$")
EMAIL_ADDRESS = re.compile(r"^[^@\s,;<>\"'()\\]{1,64}@[A-Za-z0-9.\-]{1,190}$")
SMTP_SERVER = re.compile(r"^[A-Za-z0-9.\-]{1,253}(?::\d{1,5})?$")
MAX_EMAILS = 10


def email_list_check(value: tuple[str, ...], key: str, source: Source) -> tuple[str, ...]:
    if len(value) > MAX_EMAILS:
        source.fail(key, f"lists {len(value)} addresses; at most {MAX_EMAILS}")
    for address in value:
        if not EMAIL_ADDRESS.match(address):
            source.fail(key, f"{address!r} is not an e-mail address like student@school.edu")
    return value


def smtp_host_port(server: str | None) -> tuple[str, int]:
    """``smtp.school.edu:587`` -> (host, port); empty: the local mail server on port 25."""
    if not server:
        return "localhost", 25
    host, _, port = server.partition(":")
    return host, int(port) if port else 25


def is_webhook_url(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 2048 and bool(WEBHOOK_URL.match(value))
