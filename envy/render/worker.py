"""One render slot: claim an item, render it as a child process, complete or fail it."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from envy.protocol.status import WorkerStatus
from envy.render.claims import DONE, LOST, MINE, UNKNOWN, Claim
from envy.render.jobs import Job
from envy.render.plans import PlanError, WorkPlan, plan_for
from envy.render.progress import ProgressParser
from envy.share.layout import make_dirs_within

if TYPE_CHECKING:
    from envy.render.render_loop import RenderLoop

log = logging.getLogger(__name__)

# How often a running render is checked: stop requests, memory, lost claims.
CHECK_INTERVAL_S = 0.25


class RenderWorker(threading.Thread):
    def __init__(self, loop: "RenderLoop", index: int) -> None:
        super().__init__(name=f"envy-worker-{index}", daemon=True)
        self.loop = loop
        self.index = index
        self.job: Job | None = None
        self.claim: Claim | None = None
        self.parser: ProgressParser | None = None
        self.started: float | None = None
        self._child = None
        self._stop_now = threading.Event()

    def status(self) -> WorkerStatus:
        claim, job, parser, started = self.claim, self.job, self.parser, self.started
        if claim is None or job is None:
            return WorkerStatus(self.index)
        elapsed = time.monotonic() - started if started else None
        return WorkerStatus(self.index, job.id, claim.item.base, parser.percent if parser else None,
                            None, round(elapsed, 1) if elapsed is not None else None)

    def stop_current(self) -> None:
        self._stop_now.set()
        child = self._child
        if child is not None:
            child.stop("stopped by stop()")

    def run(self) -> None:
        while not self.loop.stopping.is_set():
            try:
                picked = self.loop.next_claim()
            except Exception:
                log.exception("worker %d: choosing work failed", self.index)
                picked = None
            if picked is None:
                self.loop.wait_for_work()
                continue
            self.job, self.claim = picked
            try:
                self.render(*picked)
            except Exception:
                log.exception("worker %d: rendering %s failed unexpectedly", self.index, picked[1].item.original)
                self._fail(picked[0], picked[1], "Envy error while rendering (see agent log)")
            finally:
                self.loop.queue_for(picked[0]).forget(picked[1])
                self.job = self.claim = self.parser = self.started = None
                self._child = None

    # -- one item ----------------------------------------------------------------------
    def render(self, job: Job, claim: Claim) -> None:
        agent = self.loop.agent
        attempt = claim.item.failures + 1
        log_path = job.logs_dir(agent.layout) / f"{claim.item.base}.{agent.host.lower()}.{attempt}.log"
        try:
            plan = plan_for(self.loop.plan_input(job, claim))
        except PlanError as exc:
            self._write_reason(log_path, str(exc))
            self._fail(job, claim, str(exc))
            return
        if claim.reclaimed_from:
            self._remove_dead_owners_temp(plan, claim.reclaimed_from)
        log.info("worker %d: rendering %s of %s", self.index, plan.label, job.name)
        self.parser = ProgressParser(plan.profile) if plan.profile else None
        self.started = time.monotonic()
        make_dirs_within(agent.layout.jobs_dir, job.id, "logs")
        memory = agent.config.memory_mb or None
        self._child = agent.processes.start(
            f"{job.id}:{claim.item.base}", plan.argv, log_path, cwd=plan.cwd, memory_limit_mb=memory,
            on_output=self.parser.feed if self.parser else None,
        )
        result = self._wait(claim)
        if self.parser:
            self.parser.flush()
        if self._stop_now.is_set() and self.loop.stopping.is_set():
            self._cleanup(plan)
            released = self.loop.queue_for(job).release(claim)
            log.info("worker %d: stopped %s (%s)", self.index, claim.item.original, "given back" if released else "already taken")
            return
        reason = self._failure_reason(plan, result)
        if reason is None:
            self._complete(job, claim, plan)
        else:
            self._cleanup(plan)
            self._write_reason(log_path, reason)
            self._fail(job, claim, reason)

    def _wait(self, claim: Claim):  # type: ignore[no-untyped-def]
        queue_check = 0.0
        child = self._child
        while True:
            result = child.wait(CHECK_INTERVAL_S)
            if result is not None:
                return result
            now = time.monotonic()
            if now - queue_check > self.loop.agent.config.heartbeat:
                queue_check = now
                # Only a claim seen gone from a reachable folder is lost; an
                # unreachable share says nothing, and the render goes on.
                if self.loop.queue_for(self.job).ownership(claim) == LOST:  # type: ignore[arg-type]
                    log.warning("worker %d: %s was taken over by another agent; stopping my render", self.index, claim.item.original)
                    child.stop("claim taken over")

    def _failure_reason(self, plan: WorkPlan, result) -> str | None:  # type: ignore[no-untyped-def]
        if result.killed_reason:
            return result.killed_reason
        profile = plan.profile
        ok_codes = profile.ok_exit_codes if profile else (0,)
        if result.returncode not in ok_codes:
            return f"renderer exited with code {result.returncode}"
        if self.parser and self.parser.error:
            return f"renderer reported an error: {self.parser.error[:200]}"
        missing = [o.final.name for o in plan.outputs if o.written() is None]
        if missing:
            return f"expected output missing or empty: {', '.join(missing[:5])}"
        return None

    def _complete(self, job: Job, claim: Claim, plan: WorkPlan) -> None:
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
                    if not published:
                        for out in plan.outputs:
                            if out.temp is not None and self.loop.agent.fs.exists(out.temp):
                                self.loop.agent.fs.replace(out.temp, out.final)
                        published = True
                    state = queue.finish(claim)
                except OSError as exc:
                    log.warning("worker %d: cannot complete %s yet (%s)", self.index, claim.item.original, exc)
                    state = UNKNOWN
                if state == DONE:
                    self.loop.done_count += 1
                    took = time.monotonic() - (self.started or time.monotonic())
                    log.info("worker %d: completed %s of %s in %.1f s", self.index, plan.label, job.name, took)
                    return
                if state == LOST:
                    log.warning("worker %d: %s was taken over just before completing; the new owner finishes it",
                                self.index, claim.item.original)
                    return
            # Otherwise the share cannot tell us now: keep the frame and its image, and try again.
        log.warning("worker %d: quitting with %s rendered but not marked done (share unreachable)",
                    self.index, claim.item.original)

    def _fail(self, job: Job, claim: Claim, reason: str) -> None:
        queue = self.loop.queue_for(job)
        state: str | None = UNKNOWN
        # While the share cannot be reached the frame stays ours until it answers.
        for _ in self._while_share_away(f"failing {claim.item.original}"):
            try:
                state = queue.fail(claim, self.loop.max_retries(job))
            except OSError:
                state = UNKNOWN
            if state != UNKNOWN:
                break
        self.loop.note_failure(claim.item)
        if state == "failed":
            log.error("worker %d: %s FAILED for good: %s", self.index, claim.item.original, reason)
        elif state == "pending":
            log.warning("worker %d: %s failed (%s); it will be retried", self.index, claim.item.original, reason)
        else:
            log.warning("worker %d: %s failed but was no longer mine", self.index, claim.item.original)

    def _while_share_away(self, doing: str) -> Iterator[None]:
        """Yield once per attempt; between attempts wait with backoff (1 s doubling to 30 s).

        Ends when the agent quits; the caller breaks out as soon as the share answers.
        """
        delay = 1.0
        while True:
            yield
            if self.loop.agent.quitting.is_set():
                return
            log.info("worker %d: share unreachable while %s; retrying in %.0f s", self.index, doing, delay)
            self.loop.agent.quitting.wait(delay)
            delay = min(delay * 2, 30.0)

    def _remove_dead_owners_temp(self, plan: WorkPlan, old_nonce: str) -> None:
        """A killed agent's render may have left its temp image; it is nobody's now."""
        mine = self.loop.agent.nonce
        for out in plan.outputs:
            if out.temp is not None and mine in out.temp.name:
                try:
                    self.loop.agent.fs.unlink(out.temp.with_name(out.temp.name.replace(mine, old_nonce)))
                except OSError:
                    pass

    def _cleanup(self, plan: WorkPlan) -> None:
        for out in plan.outputs:
            if out.temp is not None:
                try:
                    self.loop.agent.fs.unlink(out.temp)
                except OSError:
                    pass

    def _write_reason(self, log_path: Path, reason: str) -> None:
        try:
            make_dirs_within(self.loop.agent.layout.jobs_dir, log_path.parent.parent.name, "logs")
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(f"\nENVY FAILED: {reason}\n")
        except OSError as exc:
            log.warning("cannot write the failure reason to %s: %s", log_path, exc)


