"""The agent's notification sender: one thread, a queue of events, a few tries each with backoff.

``send()`` only queues (a worker calls it right after marking a frame done),
so a slow or dead webhook or mail server never holds up a render. Each
channel of an event is tried ``attempts`` times, waiting 2, 4, 8 ... s
between tries; every failure is logged, and giving up is an error in the
agent's log. The thread sleeps on its stop event, so ``stop()`` is
immediate; events still queued then are dropped (logged).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from envy.notify.channels import post_webhook, send_mail
from envy.notify.events import JobEvent
from envy.notify.settings import NotifySettings

log = logging.getLogger(__name__)

Delivery = tuple[str, Callable[[], None]]  # (what, for the log; the one try)


class Outbox(threading.Thread):
    """Owns its queue; the settings of each event's submitter are read when the event is sent."""

    def __init__(self, settings_for: Callable[[str], NotifySettings], default_sender: str,
                 attempts: int = 4, first_delay_s: float = 2.0) -> None:
        super().__init__(name="envy-notify", daemon=True)
        self._settings_for = settings_for
        self._default_sender = default_sender
        self._attempts = attempts
        self._first_delay_s = first_delay_s
        self._queue: queue.Queue[JobEvent] = queue.Queue(maxsize=1000)
        self.stopped = threading.Event()
        self._start_lock = threading.Lock()

    def send(self, event: JobEvent) -> None:
        with self._start_lock:
            if not self.is_alive() and not self.stopped.is_set():
                self.start()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.error("notify: too many notifications waiting; dropped the one for job %s", event.name)

    def stop(self) -> None:
        self.stopped.set()
        if not self._queue.empty():
            log.warning("notify: stopping with %d notification(s) not sent", self._queue.qsize())

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                event = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            try:
                for what, attempt in self.deliveries(event):
                    self._deliver(what, attempt)
            except Exception:  # a bug here must not end notifications for the agent's life
                log.exception("notify: sending the notification of job %s failed", event.name)

    def deliveries(self, event: JobEvent) -> list[Delivery]:
        settings = self._settings_for(event.user)
        text = event.message()
        found: list[Delivery] = []
        if settings.webhook:
            url = settings.webhook
            found.append((f"webhook for job {event.name}", lambda: post_webhook(url, text)))
        if settings.emails:
            to, server = settings.emails, settings.smtp_server
            sender = settings.smtp_from or self._default_sender
            found.append((f"e-mail to {', '.join(to)} for job {event.name}",
                          lambda: send_mail(server, sender, to, text, text)))
        if not found:
            log.info("notify: job %s %s; %s has no webhook or e-mail set", event.name, event.state, event.user)
        return found

    def _deliver(self, what: str, attempt: Callable[[], None]) -> None:
        delay = self._first_delay_s
        for n in range(1, self._attempts + 1):
            try:
                attempt()
                log.info("notify: sent the %s", what)
                return
            except OSError as exc:
                if n == self._attempts:
                    log.error("notify: gave up on the %s after %d tries: %s", what, n, exc)
                    return
                log.warning("notify: the %s failed (try %d of %d: %s); again in %.0f s",
                            what, n, self._attempts, exc, delay)
            if self.stopped.wait(delay):
                log.warning("notify: stopping; the %s was not sent", what)
                return
            delay *= 2
