"""One render slot: claim an item, render it as a child process, complete or fail it.

Ownership: a worker thread owns everything it writes. What others may see
(the heartbeat's status, the loop's description) is published as one
immutable ``WorkInHand`` by a single reference assignment and read whole;
the only field that changes while a frame renders is the progress parser's
percent, which the child's output-reader thread alone writes (a float).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from envy.loop_guard import LoopGuard
from envy.protocol.status import WorkerStatus
from envy.render.claims import DONE, LOST, MINE, UNKNOWN, Claim
from envy.render.confine import PathRefused
from envy.render.host import ChildOutcome, RunningChild, WorkerLoop
from envy.render.jobs import Job
from envy.render.limits import render_limits
from envy.render.output_record import record_outputs, recorded_files
from envy.render.plans import PlanError, PlanRefused, WorkPlan
from envy.render.progress import ProgressParser
from envy.render.publish import publish_output
from envy.render.thumbnails import thumb_path, write_thumbnail
from envy.share.fs import ShareFS
from envy.share.layout import make_dirs_within
from envy.share.output_folders import ShareAway

log = logging.getLogger(__name__)

# How often a running render is checked: stop requests, memory, lost claims.
CHECK_INTERVAL_S = 0.25


@dataclass(frozen=True)
class WorkInHand:
    """What a worker is doing, published whole: the heartbeat never sees half an update."""

    job: Job
    claim: Claim
    started: float  # monotonic
    progress: ProgressParser | None = None

    def status(self, index: int) -> WorkerStatus:
        percent = self.progress.percent if self.progress else None
        return WorkerStatus(index, self.job.id, self.claim.item.base, percent, None,
                            round(time.monotonic() - self.started, 1))

    def describe(self) -> str:
        return f"{self.job.name} {self.claim.item.base}"


class RenderWorker(threading.Thread):
    def __init__(self, loop: WorkerLoop, index: int) -> None:
        super().__init__(name=f"envy-worker-{index}", daemon=True)
        self.loop = loop
        self.index = index
        # Written by this worker's thread only, one reference at a time; read by any.
        self.in_hand: WorkInHand | None = None
        self._child: RunningChild | None = None
        self._stop_now = threading.Event()
        self._give_back = threading.Event()  # NIMBY: the frame in hand goes back to the farm

    def status(self) -> WorkerStatus:
        in_hand = self.in_hand  # read once: the value is immutable
        return in_hand.status(self.index) if in_hand is not None else WorkerStatus(self.index)

    def stop_current(self) -> None:
        self._stop_now.set()
        child = self._child
        if child is not None:
            child.stop("stopped by stop()")

    def give_back_current(self, reason: str) -> None:
        """Stop the render in hand and give its frame back (pending again, failure count kept)."""
        child = self._child
        if child is None:
            return  # nothing running; the loop's hold keeps new frames away
        self._give_back.set()
        child.stop(reason)

    def run(self) -> None:
        guard = LoopGuard(f"render worker {self.index}", log)  # this thread's own
        while not self.loop.stopping.is_set():
            try:
                self._one_round(guard)
            except Exception as exc:  # MemoryError included: a worker thread never dies of one round
                self.loop.stopping.wait(guard.failed(exc))

    def _one_round(self, guard: LoopGuard) -> None:
        picked = self.loop.next_claim()
        if picked is None:
            guard.ok()
            self.loop.wait_for_work()
            return
        self.in_hand = WorkInHand(picked[0], picked[1], time.monotonic())
        try:
            self.render(*picked)
            guard.ok()
        except Exception as exc:
            delay = guard.failed(exc)
            self._fail(picked[0], picked[1], f"Envy error while rendering ({type(exc).__name__}; see agent log)")
            self.loop.stopping.wait(delay)  # a render that breaks every time must not burn through the frames
        finally:
            self.in_hand = None
            self._child = None
            self.loop.queue_for(picked[0]).forget(picked[1])

    # -- one item ----------------------------------------------------------------------
    def render(self, job: Job, claim: Claim) -> None:
        host = self.loop.host
        attempt = claim.item.failures + 1
        log_path = job.logs_dir(host.layout) / f"{claim.item.base}.{host.host.lower()}.{attempt}.log"
        inp = self.loop.plan_input(job, claim)
        try:
            # The attempt's log is in the job's own folder; a link planted there must not lead our writes out.
            inp.confined_local(log_path, "render log", output=True)
        except PlanRefused as exc:
            self._refuse(job, claim, str(exc), None)
            return
        try:
            plan = self.loop.planners.plan(inp)
        except PlanRefused as exc:  # a path out of the share: retrying cannot help
            self._refuse(job, claim, str(exc), log_path)
            return
        except PlanError as exc:
            self._write_reason(log_path, str(exc))
            self._fail(job, claim, str(exc))
            return
        except ShareAway as exc:  # not the frame's fault: nothing started, no failure counted
            self._return_unstarted(job, claim, str(exc))
            return
        if claim.reclaimed_from:
            remove_dead_owners_temp(plan, host.nonce, claim.reclaimed_from, host.fs)
        log.info("worker %d: rendering %s of %s", self.index, plan.label, job.name)
        parser = ProgressParser(plan.profile) if plan.profile else None
        started = time.monotonic()
        self.in_hand = WorkInHand(job, claim, started, parser)
        make_dirs_within(host.layout.jobs_dir, job.id, "logs")
        memory = host.config.memory_mb or None
        limits = render_limits(job, host.config)
        child = host.processes.start(
            f"{job.id}:{claim.item.base}", plan.argv, log_path, cwd=plan.cwd, memory_limit_mb=memory,
            on_output=parser.feed if parser else None, timeout_s=limits.timeout_s, stall_s=limits.stall_s,
        )
        self._give_back.clear()
        self._child = child
        result = self._wait(job, claim, child)
        if parser:
            parser.flush()
        if (self._stop_now.is_set() and self.loop.stopping.is_set()) or self._give_back.is_set():
            self._give_back.clear()
            self._cleanup(plan)
            released = self.loop.queue_for(job).release(claim)
            log.info(
                "worker %d: stopped %s (%s)",
                self.index,
                claim.item.original,
                "given back" if released else "already taken",
            )
            return
        # Judge the render only where its output can be seen: a share that is away makes
        # every output look "missing", and a good frame would be failed for good. (A plan
        # without outputs is judged by the exit alone: no look at the share.)
        for _ in self._while_share_away(f"checking the output of {claim.item.original}") if plan.outputs else ():
            if host.layout.is_mounted(host.fs):
                break
        reason = failure_reason(plan, result, parser, host.fs)
        if reason is None:
            self._complete(job, claim, plan, started, log_path)
        else:
            self._cleanup(plan)
            self._write_reason(log_path, reason)
            self._fail(job, claim, reason)
        if claim.reclaimed_from:
            # Once more after the frame: the old owner's renderer may have outlived the
            # reclaim (a frozen machine's renderer runs on; a Windows one whose agent died)
            # and written its temp image after the first clean-up.
            remove_dead_owners_temp(plan, host.nonce, claim.reclaimed_from, host.fs)

    def _wait(self, job: Job, claim: Claim, child: RunningChild) -> ChildOutcome:
        queue_check = 0.0
        while True:
            result = child.wait(CHECK_INTERVAL_S)
            if result is not None:
                return result
            now = time.monotonic()
            if now - queue_check > self.loop.host.config.heartbeat:
                queue_check = now
                # Only a claim seen gone from a reachable folder is lost; an
                # unreachable share says nothing, and the render goes on.
                if self.loop.queue_for(job).ownership(claim) == LOST:
                    log.warning(
                        "worker %d: %s was taken over by another agent; stopping my render",
                        self.index,
                        claim.item.original,
                    )
                    child.stop("claim taken over")

    def _complete(self, job: Job, claim: Claim, plan: WorkPlan, started: float, log_path: Path) -> None:
        """Check ownership, publish the outputs, mark done; wait out a share that is away."""
        queue = self.loop.queue_for(job)
        published = False
        for _ in self._while_share_away(f"completing {claim.item.original}"):
            state = queue.ownership(claim)
            if state == LOST:
                self._cleanup(plan)
                log.warning("worker %d: %s is no longer mine (taken over while I was away); not completing it",
                            self.index, claim.item.original)
                return
            if state == MINE:
                try:
                    moved = False
                    if not published:
                        moved = self._publish(job, claim, plan)
                        published = True
                    # Ownership was seen just above; it is asked again only if moving the images took time.
                    state = queue.finish(claim, owned=not moved)
                except PathRefused as exc:
                    self._cleanup(plan)
                    self._refuse(job, claim, str(exc), log_path)
                    return
                except Exception as exc:  # the share's OSError, or a MemoryError: the frame is ours, try again
                    log.warning("worker %d: cannot complete %s yet (%s: %s)", self.index, claim.item.original,
                                exc.__class__.__name__, exc)
                    state = UNKNOWN
                if state == DONE:
                    took = time.monotonic() - started
                    self.loop.count_done(job.id, claim.item.base, took)
                    log.info("worker %d: completed %s of %s in %.1f s", self.index, plan.label, job.name, took)
                    # What the renderer wrote, looked up once for the preview and the record.
                    written = [out.final if out.temp is not None else out.written(self.loop.host.fs)
                               for out in plan.outputs]
                    self._thumbnail(job, claim, plan, written)
                    record_outputs(self.loop.host.layout, job.id, claim.item.base,
                                   [f for f in written if f is not None], self.loop.host.fs)
                    self.loop.item_finished(job)
                    return
                if state == LOST:
                    log.warning("worker %d: %s was taken over just before completing; the new owner finishes it",
                                self.index, claim.item.original)
                    return
            # Otherwise the share cannot tell us now: keep the frame and its image, and try again.
        log.warning("worker %d: quitting with %s rendered but not marked done (share unreachable)",
                    self.index, claim.item.original)

    def _publish(self, job: Job, claim: Claim, plan: WorkPlan) -> bool:
        """Move each temp image into place, confined again now: a link may have been planted on the
        way while it rendered (envy/render/publish.py); PathRefused when it cannot be done safely.
        True when there was an image to move (the frame's output record is read only then)."""
        fs = self.loop.host.fs
        temps = [out for out in plan.outputs if out.temp is not None and fs.exists(out.temp)]
        if not temps:
            return False
        inp = self.loop.plan_input(job, claim)
        ours = recorded_files(self.loop.host.layout, job.id, claim.item.base, fs, inp.local_path)
        for out in temps:
            assert out.temp is not None
            publish_output(out.temp, out.final, inp.confinement(), ours, fs)
        return True

    def _thumbnail(self, job: Job, claim: Claim, plan: WorkPlan, written: list[Path | None]) -> None:
        """A small preview of the frame for the web monitor, made here where the image is (issue 12 §4).

        After the frame is marked done, so it never delays or fails the frame:
        write_thumbnail catches everything and bounds what it reads.
        """
        if not plan.outputs:
            return  # the renderer chose its own output path: nothing known to preview
        fs = self.loop.host.fs
        image = written[-1] or plan.outputs[-1].final  # a chunk of frames: its last one
        try:  # the thumbs folder is on the share: a link planted there must not lead the write out
            self.loop.plan_input(job, claim).confined_local(
                thumb_path(self.loop.host.layout, job.id, claim.item.base), "preview", output=True)
        except PlanRefused as exc:
            log.warning("worker %d: no preview of %s: %s", self.index, claim.item.original, exc)
            return
        write_thumbnail(self.loop.host.layout, job.id, claim.item.base, image, fs)

    def _refuse(self, job: Job, claim: Claim, reason: str, log_path: Path | None) -> None:
        log.warning("worker %d: %s of job %s refused: %s", self.index, claim.item.original, job.name, reason)
        if log_path is not None:
            self._write_reason(log_path, reason)
        self._fail(job, claim, reason, retries=0)

    def _fail(self, job: Job, claim: Claim, reason: str, retries: int | None = None) -> None:
        """Fail the try: back to pending, or failed after the job's retries (``retries`` replaces them)."""
        queue = self.loop.queue_for(job)
        limit = self.loop.max_retries(job) if retries is None else retries
        # While the share cannot be reached the frame stays ours until it answers.
        state = self._until_share_answers(f"failing {claim.item.original}", lambda: queue.fail(claim, limit))
        self.loop.note_failure(claim.item)
        if state == "failed":
            log.error("worker %d: %s FAILED for good: %s", self.index, claim.item.original, reason)
            self.loop.item_finished(job)
        elif state == "pending":
            log.warning("worker %d: %s failed (%s); it will be retried", self.index, claim.item.original, reason)
        else:
            log.warning("worker %d: %s failed but was no longer mine", self.index, claim.item.original)

    def _return_unstarted(self, job: Job, claim: Claim, reason: str) -> None:
        log.warning("worker %d: %s given back unstarted: %s", self.index, claim.item.original, reason)
        queue = self.loop.queue_for(job)
        self._until_share_answers(f"giving back {claim.item.original}", lambda: queue.give_back(claim))

    def _until_share_answers(self, doing: str, move: Callable[[], str | None]) -> str | None:
        """``move`` (a queue's fail or give_back) until it answers more than ``unknown``, or the agent quits."""
        state: str | None = UNKNOWN
        for _ in self._while_share_away(doing):
            try:
                state = move()
            except OSError:
                state = UNKNOWN
            except Exception as exc:  # MemoryError: the frame stays ours; leaving it claimed would strand it
                log.warning("worker %d: %s failed (%s: %s); trying again", self.index, doing,
                            exc.__class__.__name__, exc)
                state = UNKNOWN
            if state != UNKNOWN:
                break
        return state

    def _while_share_away(self, doing: str) -> Iterator[None]:
        """Yield once per attempt; between attempts wait with backoff (1 s doubling to 30 s).

        Ends when the agent quits; the caller breaks out as soon as the share answers.
        """
        delay = 1.0
        while True:
            yield
            if self.loop.host.quitting.is_set():
                return
            log.info("worker %d: share unreachable while %s; retrying in %.0f s", self.index, doing, delay)
            self.loop.host.quitting.wait(delay)
            delay = min(delay * 2, 30.0)

    def _cleanup(self, plan: WorkPlan) -> None:
        for out in plan.outputs:
            if out.temp is not None:
                for path in temp_and_side_files(out.temp):
                    try:
                        self.loop.host.fs.unlink(path)
                    except OSError:
                        pass

    def _write_reason(self, log_path: Path, reason: str) -> None:
        # The render log is this worker's own file (one per item, host and try):
        # appending to it breaks no one-writer rule.
        try:
            make_dirs_within(self.loop.host.layout.jobs_dir, log_path.parent.parent.name, "logs")
            self.loop.host.fs.append(log_path, f"\nENVY FAILED: {reason}\n".encode())
        except OSError as exc:
            log.warning("cannot write the failure reason to %s: %s", log_path, exc)


def failure_reason(plan: WorkPlan, result: ChildOutcome, parser: ProgressParser | None, fs: ShareFS) -> str | None:
    """Why a finished render counts as failed, or None when it succeeded."""
    if result.killed_reason:
        return result.killed_reason
    profile = plan.profile
    ok_codes = profile.ok_exit_codes if profile else (0,)
    # The renderer's own words explain a failure better than its exit code
    # (issue 11 §2): the matched error line first, else its last lines.
    if parser and parser.error:
        return f"renderer reported an error: {readable(parser.error)[:MAX_REASON]}"
    if result.returncode not in ok_codes:
        last = [readable(line) for line in parser.last_lines] if parser else []
        if last:
            return f"renderer exited with code {result.returncode}; its last output: {' | '.join(last)[:MAX_REASON]}"
        return f"renderer exited with code {result.returncode}"
    missing = [o.final.name for o in plan.outputs if o.written(fs) is None]
    if missing:
        return f"expected output missing or empty: {', '.join(missing[:5])}"
    return None


# Files a renderer writes beside its output while it works, named after the output:
# POV-Ray's ``<output stem>.pov-state`` (for +C continue; it removes it when done).
# A render that is stopped, killed or taken over leaves them behind.
SIDE_SUFFIXES = (".pov-state",)


def temp_and_side_files(temp: Path) -> list[Path]:
    """The temp output and the side files a renderer may have written beside it (all ours: they carry our nonce)."""
    return [temp, *(temp.with_suffix(suffix) for suffix in SIDE_SUFFIXES)]


MAX_REASON = 300
# The folders of a path in a message ("'/mnt/share/shot020/frames/x.pov'" -> "'x.pov'") and the
# claim part of an item name ("x.envy~work~0~lab3-03~4211~9f2c01ab.pov" -> "x.pov"): the student
# knows the folder, and the frame's own name is what they look for.
_FOLDERS = re.compile(r"""(?<![^\s'"(])(?:[A-Za-z]:)?(?:[\\/][^'"\s\\/]+)+[\\/](?=[^'"\s\\/])""")
_CLAIM_TAG = re.compile(r"""\.envy~[^.'"\s\\/]*""")


def readable(message: str) -> str:
    """A renderer's message as a reason: without folders and claim tags, whitespace collapsed."""
    return " ".join(_CLAIM_TAG.sub("", _FOLDERS.sub("", message)).split())


def remove_dead_owners_temp(plan: WorkPlan, mine: str, old_nonce: str, fs: ShareFS) -> None:
    """A killed agent's render may have left its temp image and side files; they are nobody's now."""
    for out in plan.outputs:
        if out.temp is not None and mine in out.temp.name:
            for path in temp_and_side_files(out.temp.with_name(out.temp.name.replace(mine, old_nonce))):
                try:
                    fs.unlink(path)
                except OSError:
                    pass
