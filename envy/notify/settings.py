"""The submitter's notify settings, as the agent that finished their job reads them.

The job records who submitted it (``created_by``); their settings are the
notify keys of ``<share>/users/<user>/config.yaml`` (the same file and keys
as their own config, envy/config.py) over the agent's own values (the farm's
``config.yaml`` may name the lab's mail server). Only the notify keys are
taken from the user's file: nothing else in it changes how this agent runs.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from envy.config import Config, ConfigError, read_yaml_file
from envy.share.layout import ShareLayout

log = logging.getLogger(__name__)

NOTIFY_KEYS = ("notify_webhook", "notify_email", "smtp_server", "smtp_from")
# A user name as a folder on the share: no separators, no "..", nothing hidden.
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class NotifySettings:
    webhook: str | None = None
    emails: tuple[str, ...] = ()
    smtp_server: str | None = None
    smtp_from: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.webhook or self.emails)


def notify_settings(layout: ShareLayout, user: str, base: Config) -> NotifySettings:
    """``user``'s settings over ``base``; a bad or unreadable file is logged and gives ``base``'s values."""
    cfg = base
    if _USER_RE.match(user) and ".." not in user:
        path = layout.user_dir(user) / "config.yaml"
        try:
            data = read_yaml_file(path)
            cfg = base.with_values({k: data[k] for k in NOTIFY_KEYS if k in data}, str(path))
        except ConfigError as exc:
            log.warning("notify settings of %s not used: %s", user, exc)
    elif user:
        log.warning("job submitted by %r: not a user name Envy reads settings for", user[:80])
    return NotifySettings(cfg.notify_webhook, tuple(cfg.notify_email), cfg.smtp_server, cfg.smtp_from)
