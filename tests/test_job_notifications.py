"""Job notifications: real agents and real POV-Ray renders tell a local webhook and a local SMTP sink.

The webhook is a real HTTP server in a thread (http.server); the mail goes
through a real SMTP server (aiosmtpd) to a sink that keeps it. Nothing here
talks to Discord, Slack or a real mail server.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import require_tool
from envy.notify.channels import post_webhook
from envy.notify.events import MARKER, claim_event, new_event, read_event
from envy.platform.host import host_name, user_name
from envy.share.fs import REAL_FS
from envy_io.job_notices import JobNotices
from farm import Farm, wait_for
from render_helpers import pov_frames, small_povray_profile, submit_folder

BROKEN_POV = "#version 3.7;\nsphere { <0, 0, 0>, 1 pigment { color rgb 1 }\n"


class Webhook:
    """A local HTTP server that records every POST body; the first ``fail_first`` answers are 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[dict] = []
        self.answers: list[int] = []
        self._fail_left = fail_first
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                code = 500 if hook._fail_left > 0 else 204
                hook._fail_left -= 1
                hook.answers.append(code)
                if code == 204:
                    hook.posts.append(json.loads(body))
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self, word: str) -> list[str]:
        return [p["content"] for p in self.posts if word in p["content"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailSink:
    """A real SMTP server on localhost (aiosmtpd) that keeps each message's text."""

    def __init__(self, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[str] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
                sink.messages.append(envelope.content.decode("utf-8", "replace"))  # type: ignore[attr-defined]
                return "250 OK"

        self.port = port if port is not None else free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def texts(self, word: str) -> list[str]:
        return [m for m in self.messages if word in m]

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(fail_first=1)
    yield hook
    hook.close()


@pytest.fixture
def mail() -> Iterator[MailSink]:
    pytest.importorskip("aiosmtpd", reason="aiosmtpd (the 'test' extra) is the local SMTP sink")
    sink = MailSink()
    yield sink
    sink.close()


def user_config(farm: Farm, text: str) -> None:
    """The submitter's own config on the share: users/<user>/config.yaml (the job records user_name())."""
    folder = farm.layout.user_dir(user_name())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(text)


def test_two_agents_finishing_a_job_together_send_one_webhook_and_one_mail_after_a_retry(
    farm: Farm, tmp_path: Path, webhook: Webhook, mail: MailSink
) -> None:
    require_tool("povray")
    user_config(farm, f"notify_webhook: {webhook.url}\nnotify_email: [student@school.edu]\n"
                      f"smtp_server: 127.0.0.1:{mail.port}\nsmtp_from: farm@school.edu\n")
    profile = small_povray_profile(tmp_path / "small.yaml", 64, 48)
    frames = pov_frames(tmp_path / "shot010" / "frames", 2)
    job = submit_folder(farm.share, frames, renderer="povray-small", profiles=[profile])
    agents = [farm.start_agent(h, profiles=[str(profile)]) for h in ("lab1-01", "lab1-02")]
    for a in agents:
        farm.wait_heartbeat(a)
    farm.send("lab1 * render()")
    wait_for(lambda: webhook.texts("shot010"), 60, "the webhook to be told shot010 is complete")
    assert webhook.answers[0] == 500, "the first try was refused, so the one that arrived is a retry"
    wait_for(lambda: mail.texts("shot010"), 30, "the mail about shot010")
    (text,) = webhook.texts("shot010")
    assert text == "Envy: job shot010 is complete (2 of 2 done)"
    (message,) = mail.texts("shot010")
    assert "Subject: Envy: job shot010 is complete" in message and "To: student@school.edu" in message
    event = read_event(farm.layout, job.id, REAL_FS)
    assert event is not None and event.state == "complete" and event.host in ("lab1-01", "lab1-02")

    # A later job's notice is the marker: once it arrived, a second notice of shot010 would have too.
    later = pov_frames(tmp_path / "shot020" / "frames", 1)
    submit_folder(farm.share, later, renderer="povray-small", profiles=[profile])
    wait_for(lambda: webhook.texts("shot020") and mail.texts("shot020"), 60, "the notices of shot020")
    assert len(webhook.texts("shot010")) == 1 and len(mail.texts("shot010")) == 1
    tellers = [a.host for a in agents if "job shot010 is complete: this agent tells" in farm.log(a.host)]
    assert tellers == [event.host]
    assert "notify: the webhook for job shot010 failed (try 1 of 4" in farm.log(event.host)


def test_a_job_with_failed_frames_is_told_as_complete_with_failures(
    farm: Farm, tmp_path: Path, webhook: Webhook
) -> None:
    require_tool("povray")
    user_config(farm, f"notify_webhook: {webhook.url}\n")
    profile = small_povray_profile(tmp_path / "small.yaml", 64, 48)
    frames = pov_frames(tmp_path / "shot030" / "frames", 1)
    (frames / "shot010.0002.pov").write_text(BROKEN_POV)
    submit_folder(farm.share, frames, renderer="povray-small", profiles=[profile], max_retries=0)
    agent = farm.start_agent("lab1-01", profiles=[str(profile)])
    farm.wait_heartbeat(agent)
    farm.send("* render()")
    wait_for(lambda: webhook.texts("shot030"), 60, "the webhook to be told about shot030")
    assert webhook.texts("shot030") == [
        "Envy: job shot030 is complete with failures (1 of 2 failed; see: envy-io jobs shot030 --frames)"]


def test_exactly_one_of_many_agents_creating_the_marker_at_once_wins(farm: Farm) -> None:
    job_id = "20260101-000000-shot-0001"
    events = [new_event(job_id, "shot", "ana", "lab3-01", "complete", 24, 0, f"lab1-{i:02d}", 100 + i, f"{i:08x}")
              for i in range(16)]
    wins: list[tuple[str, bool]] = []
    start = threading.Barrier(len(events))

    def race(event: object) -> None:
        start.wait()
        wins.append((event.nonce, claim_event(farm.layout, event, REAL_FS)))  # type: ignore[attr-defined,arg-type]

    threads = [threading.Thread(target=race, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [nonce for nonce, won in wins if won]
    assert len(wins) == len(events) and len(won) == 1
    winner = read_event(farm.layout, job_id, REAL_FS)
    assert winner is not None and winner.nonce == won[0]


def test_the_shell_sees_a_new_finish_of_its_own_jobs_once(farm: Farm, tmp_path: Path) -> None:
    frames = pov_frames(tmp_path / "shot040" / "frames", 1)
    job = submit_folder(farm.share, frames)  # by this user, from this host
    old = submit_folder(farm.share, pov_frames(tmp_path / "old" / "frames", 1))
    claim_event(farm.layout, new_event(old.id, old.name, user_name(), host_name(), "complete", 1, 0,
                                       "lab1-01", 1, "aaaa0001"), REAL_FS)
    notices = JobNotices(farm.layout, REAL_FS, user_name(), host_name(), relist_s=0)
    assert notices.check() == []  # what finished before the shell started is not news
    claim_event(farm.layout, new_event(job.id, job.name, user_name(), host_name(), "complete", 1, 0,
                                       "lab1-01", 1, "aaaa0002"), REAL_FS)
    (news,) = notices.check()
    assert news.message() == "Envy: job shot040 is complete (1 of 1 done)"
    assert notices.check() == []
    elsewhere = JobNotices(farm.layout, REAL_FS, user_name(), "another-host", relist_s=0)
    elsewhere.check()
    (farm.layout.jobs_dir / job.id / MARKER).unlink()  # what envy-io reset does
    claim_event(farm.layout, new_event(job.id, job.name, user_name(), host_name(), "complete", 1, 0,
                                       "lab1-02", 2, "aaaa0003"), REAL_FS)
    assert [e.host for e in notices.check()] == ["lab1-02"]
    assert elsewhere.check() == []  # submitted from another machine: no notice there


@pytest.mark.parametrize("content", [b"", b"\xff\xfe" * 100, b"[1, 2]", b'{"job": 3}', b"{" * 100_000,
                                     json.dumps({"job": "x", "state": "exploded"}).encode()])
def test_a_hostile_marker_is_no_event(farm: Farm, content: bytes) -> None:
    folder = farm.layout.jobs_dir / "20260101-000000-shot-0001"
    folder.mkdir(parents=True)
    (folder / MARKER).write_bytes(content)
    assert read_event(farm.layout, folder.name, REAL_FS) is None


def test_a_fifo_marker_does_not_hang_the_reader(farm: Farm) -> None:
    folder = farm.layout.jobs_dir / "20260101-000000-shot-0001"
    folder.mkdir(parents=True)
    os.mkfifo(folder / MARKER)
    assert read_event(farm.layout, folder.name, REAL_FS) is None


def test_a_webhook_must_be_http_and_a_bad_user_config_is_refused_in_one_line(farm: Farm) -> None:
    from envy.config import Config, ConfigError
    from envy.notify.settings import notify_settings

    for url in ("file:///etc/passwd", "ftp://host/x", "http://", "javascript:alert(1)", "http://a b/"):
        with pytest.raises(OSError, match="not an http"):
            post_webhook(url, "x")
        with pytest.raises(ConfigError, match="notify_webhook"):
            Config().with_values({"notify_webhook": url}, "users/ana/config.yaml")
    for emails in (["a@b.c"] * 11, ["not an address"], ["x@y.z\nBcc: all@school.edu"]):
        with pytest.raises(ConfigError, match="notify_email"):
            Config().with_values({"notify_email": emails}, "users/ana/config.yaml")
    user_config(farm, "notify_webhook: file:///etc/passwd\nworkers: 64\n")
    settings = notify_settings(farm.layout, user_name(), Config())
    assert settings.webhook is None and not settings.any
    assert notify_settings(farm.layout, "../../etc", Config()) == notify_settings(farm.layout, "nobody", Config())


def test_a_real_shell_session_prints_the_finish_of_a_job_submitted_while_it_runs(
    farm: Farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from envy.config import load_config
    from envy_io.shell import run_shell

    monkeypatch.setenv("ENVY_CONFIG_DIR", str(tmp_path / "no-config"))
    printed = io.StringIO()
    config = load_config(share=str(farm.share), overrides={"notify_desktop": False})

    def finish_a_job_then_leave(pipe: object) -> None:
        try:
            wait_for(lambda: printed.getvalue(), 30, "the shell's greeting")
            job = submit_folder(farm.share, pov_frames(tmp_path / "shot050" / "frames", 1))
            claim_event(farm.layout, new_event(job.id, job.name, user_name(), host_name(), "complete", 1, 0,
                                               "lab1-01", 1, "bbbb0001"), REAL_FS)
            wait_for(lambda: "Envy: job shot050 is complete" in printed.getvalue(), 30, "the notice in the shell")
        finally:
            pipe.send_text("\x04")  # type: ignore[attr-defined]

    with create_pipe_input() as pipe:
        typist = threading.Thread(target=finish_a_job_then_leave, args=(pipe,))
        typist.start()
        code = run_shell(farm.layout, config, input=pipe, fs=REAL_FS, output=DummyOutput(), stdout=printed,
                         history=InMemoryHistory())
        typist.join(timeout=60)
    assert code == 0
    assert printed.getvalue().count("Envy: job shot050 is complete (1 of 1 done)") == 1


def test_a_notice_still_waiting_when_the_agent_quits_is_sent_once_at_its_next_start(
    farm: Farm, tmp_path: Path, webhook: Webhook
) -> None:
    """The agent that won the marker is the only teller: quitting must not lose what it still has to send."""
    pytest.importorskip("aiosmtpd", reason="aiosmtpd (the 'test' extra) is the local SMTP sink")
    require_tool("povray")
    port = free_port()  # no mail server on it yet
    user_config(farm, f"notify_webhook: {webhook.url}\nnotify_email: [student@school.edu]\n"
                      f"smtp_server: 127.0.0.1:{port}\n")
    profile = small_povray_profile(tmp_path / "small.yaml", 64, 48)
    submit_folder(farm.share, pov_frames(tmp_path / "shot050" / "frames", 1), renderer="povray-small",
                  profiles=[profile])
    agent = farm.start_agent("lab1-01", profiles=[str(profile)])
    farm.send("lab1 * render()")
    wait_for(lambda: webhook.texts("shot050"), 60, "the webhook (after its one refusal)")
    wait_for(lambda: "notify: the e-mail to student@school.edu for job shot050 failed" in agent.log(), 30,
             "the mail's first try to fail (no server yet)")
    agent.popen.terminate()  # signed out while the mail waits for its next try
    assert agent.wait_exit(30) == 0
    assert "they go out at the next start" in agent.log()

    sink = MailSink(port)  # the mail server comes up on the port the user set
    try:
        again = farm.start_agent("lab1-01", profiles=[str(profile)])
        wait_for(lambda: sink.texts("shot050"), 60, "the mail, sent by the agent's next start")
        wait_for(lambda: "notify: sent the e-mail" in again.log(), 30, "the restarted agent's log of it")
        farm.wait_heartbeat(again)
        assert len(sink.texts("shot050")) == 1
        assert len(webhook.texts("shot050")) == 1, "the webhook, sent before the quit, is not sent again"
    finally:
        sink.close()
