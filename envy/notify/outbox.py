"""The agent's notification sender: one thread, a queue of events, a few tries each with backoff.

``send()`` only queues (a worker calls it right after marking a frame done),
so a slow or dead webhook or mail server never holds up a render. Each
channel of an event is tried ``attempts`` times, waiting 2, 4, 8 ... s
between tries; every failure is logged, and giving up is an error in the
agent's log. The thread sleeps on its stop event, so ``stop()`` is
immediate; what is still to send then stays in the agent's local pending
file (envy/notify/pending.py) and goes out at its next start.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from envy.loop_guard import LoopGuard
from envy.notify.channels import post_webhook, send_mail
from envy.notify.events import JobEvent
from envy.notify.pending import CHANNELS, PendingEvent, PendingStore
from envy.notify.settings import NotifySettings

log = logging.getLogger(__name__)

Delivery = tuple[str, str, Callable[[], None]]  # (channel, what for the log, the one try)


class Outbox(threading.Thread):
    """Owns its queue; the settings of each event's submitter are read when the event is sent."""

    def __init__(self, settings_for: Callable[[str], NotifySettings], default_sender: str,
                 attempts: int = 4, first_delay_s: float = 2.0, pending_dir: Path | None = None) -> None:
        super().__init__(name="envy-notify", daemon=True)
        self._settings_for = settings_for
        self._default_sender = default_sender
        self._attempts = attempts
        self._first_delay_s = first_delay_s
        self._queue: queue.Queue[PendingEvent] = queue.Queue(maxsize=1000)
        self.stopped = threading.Event()
        self._start_lock = threading.Lock()
        # What is still to send, in the local pending file too; guarded by _lock (send() and this thread).
        self._store = PendingStore(pending_dir)
        self._lock = threading.Lock()
        self._pending: list[PendingEvent] = []
        earlier = self._store.load()
        if earlier:
            log.info("notify: %d notification(s) from before this start still to send", len(earlier))
            for item in earlier:
                self._enqueue(item)

    def send(self, event: JobEvent) -> None:
        self._enqueue(PendingEvent(event, list(CHANNELS)))

    def _enqueue(self, item: PendingEvent) -> None:
        with self._start_lock:
            if not self.is_alive() and not self.stopped.is_set():
                self.start()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.error("notify: too many notifications waiting; dropped the one for job %s", item.event.name)
            return
        with self._lock:
            if item not in self._pending:
                self._pending.append(item)
            self._store.save(self._pending)

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            if self._pending:
                log.warning("notify: stopping with %d notification(s) not sent; they go out at the next start",
                            len(self._pending))

    def run(self) -> None:
        guard = LoopGuard("the notify outbox", log)  # this thread's own
        while not self.stopped.is_set():
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            try:
                self._send_item(item)
                guard.ok()
            except Exception as exc:  # a bug or a MemoryError must not end notifications for the agent's life
                self.stopped.wait(guard.failed(exc))

    def _send_item(self, item: PendingEvent) -> None:
        """Each channel of one event, with its tries; crossed off the pending list as they are done."""
        for channel, what, attempt in self.deliveries(item.event):
            if channel in item.channels and self._deliver(what, attempt):
                self._cross_off(item, channel)
            if self.stopped.is_set():
                return
        self._cross_off(item, None)

    def _cross_off(self, item: PendingEvent, channel: str | None) -> None:
        """``channel`` is done with (sent or given up); None: the whole event is."""
        with self._lock:
            if channel is not None and channel in item.channels:
                item.channels.remove(channel)
            if (channel is None or not item.channels) and item in self._pending:
                self._pending.remove(item)
            self._store.save(self._pending)

    def deliveries(self, event: JobEvent) -> list[Delivery]:
        settings = self._settings_for(event.user)
        text = event.message()
        found: list[Delivery] = []
        if settings.webhook:
            url = settings.webhook
            found.append(("webhook", f"webhook for job {event.name}", lambda: post_webhook(url, text)))
        if settings.emails:
            to, server = settings.emails, settings.smtp_server
            sender = settings.smtp_from or self._default_sender
            found.append(("email", f"e-mail to {', '.join(to)} for job {event.name}",
                          lambda: send_mail(server, sender, to, text, text)))
        if not found:
            log.info("notify: job %s %s; %s has no webhook or e-mail set", event.name, event.state, event.user)
        return found

    def _deliver(self, what: str, attempt: Callable[[], None]) -> bool:
        """Try ``attempt`` with backoff; True when done with it (sent, or given up), False when stopped first."""
        delay = self._first_delay_s
        for n in range(1, self._attempts + 1):
            try:
                attempt()
                log.info("notify: sent the %s", what)
                return True
            except OSError as exc:
                if n == self._attempts:
                    log.error("notify: gave up on the %s after %d tries: %s", what, n, exc)
                    return True
                log.warning("notify: the %s failed (try %d of %d: %s); again in %.0f s",
                            what, n, self._attempts, exc, delay)
            if self.stopped.wait(delay):
                log.warning("notify: stopping; the %s goes out at the next start", what)
                return False
        return True
