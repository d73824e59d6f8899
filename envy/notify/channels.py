"""One delivery on one channel: a webhook POST or an e-mail. Each raises OSError when it did not go.

Bounded both ways: what is sent is short, each connection has a timeout, a
webhook's answer is read only a little, and redirects are not followed (a
URL from the share must not lead the agent elsewhere).
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage

from envy.notify.addresses import is_webhook_url, smtp_host_port

TIMEOUT_S = 10.0
MAX_TEXT = 1900  # Discord refuses more than 2000 characters of content


def clean_text(text: str) -> str:
    """One line, printable, bounded: job names come from the share."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    return flat[:MAX_TEXT]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # a 3xx becomes an HTTPError: delivery failed


_OPENER = urllib.request.build_opener(_NoRedirect())


def post_webhook(url: str, text: str, timeout: float = TIMEOUT_S) -> None:
    """POST ``{"content": text, "text": text}``: Discord reads content, Slack reads text."""
    if not is_webhook_url(url):
        raise OSError("the webhook is not an http:// or https:// URL")
    line = clean_text(text)
    body = json.dumps({"content": line, "text": line}).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "envy-notify"})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read(4096)
    except urllib.error.HTTPError as exc:
        raise OSError(f"webhook answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise OSError(f"webhook not reached: {exc.reason}") from None
    except ValueError as exc:  # a URL urllib cannot use
        raise OSError(f"webhook URL refused: {exc}") from None


def send_mail(server: str | None, sender: str, to: tuple[str, ...], subject: str, text: str,
              timeout: float = TIMEOUT_S) -> None:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = clean_text(subject)[:200]
    message.set_content(clean_text(text) + "\n")
    host, port = smtp_host_port(server)
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            smtp.send_message(message)
    except (smtplib.SMTPException, ValueError) as exc:
        raise OSError(f"mail via {host}:{port} failed: {exc}") from None
