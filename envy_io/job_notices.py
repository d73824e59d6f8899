"""Desktop notices of your own jobs finishing, while the shell or the monitor runs (issue 11 §6).

The agent that finishes a job leaves its event marker on the share
(``jobs/<id>/finished.json``, envy/notify/events.py). On the machine a job
was submitted from, by the user who submitted it, Envy IO watches the markers
of those jobs: a new one is printed above the prompt (the shell) and shown
as an OS notification where one is simple (envy/platform/desktop_notice.py).

Cost on the share: the job files are re-listed every ``relist_s`` (10 s, to learn
new jobs), and each poll reads only the markers of your jobs from here (a
failed open for a job still rendering). Markers there when the watcher
started are not news.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

from envy.notify.events import JobEvent, read_event
from envy.platform.desktop_notice import show_desktop_notice
from envy.render.jobs import list_jobs
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

log = logging.getLogger(__name__)


class JobNotices:
    """What is new among the markers of ``user``'s jobs submitted from ``host`` (one thread calls ``check``)."""

    def __init__(self, layout: ShareLayout, fs: ShareFS, user: str, host: str, relist_s: float = 10.0) -> None:
        self.layout, self.fs = layout, fs
        self.user, self.host = user.casefold(), host.casefold()
        self.relist_s = relist_s
        self._mine: list[str] = []
        self._listed_at = -1e9
        self._seen: dict[str, str | None] = {}  # job id -> key of the last marker seen (None: none yet)

    def check(self) -> list[JobEvent]:
        now = time.monotonic()
        if now - self._listed_at >= self.relist_s:
            self._listed_at = now
            jobs, _ = list_jobs(self.layout, self.fs)
            self._mine = [j.id for j in jobs if j.created_by.casefold() == self.user
                          and j.created_host.casefold() == self.host and not j.archived and j.state != "cancelled"]
        news = []
        for job_id in self._mine:
            event = read_event(self.layout, job_id, self.fs)
            key = event.key if event is not None else None
            first_look = job_id not in self._seen
            if event is not None and key != self._seen.get(job_id) and not (first_look and self._starting):
                news.append(event)
            self._seen[job_id] = key
        self._starting = False
        return news

    _starting = True  # the first check only learns what is there already


class JobNoticeWatcher(threading.Thread):
    """Polls ``JobNotices`` every ``interval`` s; each new finish goes to ``say`` (and a desktop toast)."""

    def __init__(self, notices: JobNotices, interval: float, say: Callable[[str], None], toast: bool) -> None:
        super().__init__(name="envy-io-job-notices", daemon=True)
        self.notices, self.interval, self.say, self.toast = notices, interval, say, toast
        self.stopped = threading.Event()

    def run(self) -> None:
        self._check()  # learn what is there already, at once
        while not self.stopped.wait(self.interval):
            self._check()

    def _check(self) -> None:
        try:
            for event in self.notices.check():
                text = event.message()
                self.say(text)
                if self.toast:
                    show_desktop_notice("Envy", text.removeprefix("Envy: "))
        except Exception:  # a share hiccup must not end the watcher
            log.debug("job notices failed", exc_info=True)

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout=5)

    def __enter__(self) -> JobNoticeWatcher:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def notice_watcher(layout: ShareLayout, fs: ShareFS, user: str, interval: float, say: Callable[[str], None],
                   toast: bool) -> JobNoticeWatcher:
    """The watcher for this machine (its host name) and ``user``, as the shell and the monitor start it."""
    from envy.platform.host import host_name

    return JobNoticeWatcher(JobNotices(layout, fs, user, host_name()), interval, say, toast)
