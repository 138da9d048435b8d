"""Digest delivery: `evla weekly` sends the digest to a local SMTP server (STARTTLS, AUTH,
plain text + HTML) and to a local Slack-compatible webhook; a failed delivery is reported
and the run still succeeds. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import ssl
import warnings
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from click.testing import CliRunner
from local_http import LocalHttpServer

from evla_miner.cli import cli
from evla_miner.core.db import loads, open_db
from evla_miner.core.errors import BadInput
from evla_miner.core.settings import NotifySettings, Settings
from evla_miner.review.notify import channels, deliver_digest, webhook_text

CERTS = Path(__file__).resolve().parent / "fixtures" / "smtp"
LOGIN, PASSWORD = "digest-bot", "s3cret-from-env"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 that insists on STARTTLS before MAIL and AUTH, and keeps
    every message it accepts (the bytes as received) and every login attempt."""

    def __init__(self, starttls: bool = True):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[email.message.EmailMessage] = []
        self.over_tls: list[bool] = []  # per message: did the client STARTTLS first?
        self.envelopes: list[list[str]] = []  # per message: RCPT TO addresses
        self.logins: list[str] = []
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append(
                    email.message_from_bytes(envelope.content, policy=email.policy.default)
                )
                server.over_tls.append(session.ssl is not None)
                server.envelopes.append(list(envelope.rcpt_tos))
                return "250 OK"

        def authenticator(smtp, session, envelope, mechanism, data):
            server.logins.append(data.login.decode())
            ok = (data.login, data.password) == (LOGIN.encode(), PASSWORD.encode())
            # handled=False: aiosmtpd answers 235 or "535 5.7.8 ..." itself
            return AuthResult(success=ok, handled=False)

        tls = {}
        if starttls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(CERTS / "cert.pem", CERTS / "key.pem")
            tls = {"tls_context": context, "require_starttls": True}
        self.port = free_port()
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticator,
            auth_require_tls=starttls,
            **tls,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.controller.start()

    def close(self):
        self.controller.stop()


class WebhookEndpoint:
    """A Slack-style incoming webhook on 127.0.0.1: records JSON bodies, answers ``status``."""

    def __init__(self, status: int = 200):
        self.bodies: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                endpoint.bodies.append(json.loads(self.rfile.read(length)))
                answer = b"ok" if status == 200 else b"no_service"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.http = LocalHttpServer(Handler)
        self.url = f"{self.http.base_url}/services/T000/B000/XXXX"

    def close(self):
        self.http.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(path: Path, smtp_port: int) -> None:
    path.write_text(
        "[notify]\n"
        'email_to = "ana@example.org, ben@example.org"\n'
        'email_from = "evla-miner@example.org"\n'
        'smtp_host = "127.0.0.1"\n'
        f"smtp_port = {smtp_port}\n"
        f'smtp_user = "{LOGIN}"\n'
        f'smtp_ca_file = "{CERTS / "cert.pem"}"\n'
        "timeout_seconds = 5\n"
    )


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.close()


def digest_files(tmp_path: Path) -> dict:
    """A small written digest, as ``write_digest`` leaves it, for the channel-level tests."""
    (tmp_path / "d.md").write_text(
        "# evla-miner weekly digest, 2026-12-03\n\n- Harvest: 1 new paper\n\n"
        "## Proposals per pillar\n\n![chart](d-pillars.svg)\n\n| Pillar | Proposals |\n"
    )
    (tmp_path / "d.html").write_text("<p>digest</p><svg></svg>")
    return {"markdown": tmp_path / "d.md", "html": tmp_path / "d.html"}


def email_settings(port: int, **changes) -> NotifySettings:
    values = {
        "email_to": "ana@example.org",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_user": LOGIN,
        "smtp_password": PASSWORD,
        "smtp_ca_file": str(CERTS / "cert.pem"),
        "timeout_seconds": 5,
    }
    return NotifySettings(**{**values, **changes})


@pytest.mark.slow
def test_weekly_delivers_the_digest_by_email_and_webhook(tmp_path, smtp, monkeypatch):
    hook = WebhookEndpoint()
    write_config(tmp_path / "evla.toml", smtp.port)
    monkeypatch.setenv("EVLA_NOTIFY_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("EVLA_NOTIFY_WEBHOOK_URL", hook.url)
    try:
        result = CliRunner().invoke(cli, ["weekly", "--demo", "--limit", "3"])
    finally:
        hook.close()
    assert result.exit_code == 0, result.output
    assert (
        "notify email: sent: to ana@example.org, ben@example.org via 127.0.0.1:"
        f"{smtp.port}" in result.stderr
    )
    assert "notify webhook: sent: posted" in result.stderr

    # one message, over STARTTLS, after a successful login, to both recipients
    [message] = smtp.messages
    assert smtp.over_tls == [True]
    assert smtp.logins == [LOGIN]
    assert smtp.envelopes == [["ana@example.org", "ben@example.org"]]
    assert message["Subject"].startswith("[evla-miner] evla-miner weekly digest, ")
    assert message["From"] == "evla-miner@example.org"
    assert message["To"] == "ana@example.org, ben@example.org"
    assert message.get_content_type() == "multipart/alternative"

    # the plain part is the Markdown digest (less its chart file), the HTML part the page
    plain = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n")
    [dated] = (tmp_path / "reports").glob("weekly-*.md")  # beside $EVLA_DB in tests
    markdown = dated.read_text(encoding="utf-8")
    assert plain == "".join(
        line for line in markdown.splitlines(keepends=True) if not line.startswith("![")
    )
    assert "## Top proposals" in plain and "![" not in plain
    page = (tmp_path / "reports" / "latest.html").read_text(encoding="utf-8")
    assert html == page and "<svg" in html

    [body] = hook.bodies
    assert body["text"].startswith("*evla-miner weekly digest, ")
    assert "\n1. <https://arxiv.org/abs/" in body["text"]

    run = open_db(tmp_path / "evla.db", create=False)["runs"].get(1)
    assert loads(run["counts"])["notify"] == {"email": "sent", "webhook": "sent"}


@pytest.mark.slow
def test_a_refused_connection_is_reported_and_the_weekly_run_still_exits_0(tmp_path, monkeypatch):
    hook = WebhookEndpoint(status=500)
    write_config(tmp_path / "evla.toml", free_port())  # nothing listens there
    monkeypatch.setenv("EVLA_NOTIFY_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("EVLA_NOTIFY_WEBHOOK_URL", hook.url)
    try:
        result = CliRunner().invoke(cli, ["weekly", "--demo", "--limit", "3"])
    finally:
        hook.close()
    assert result.exit_code == 0, result.output
    assert "notify email: FAILED: cannot connect to 127.0.0.1:" in result.stderr
    assert "Connection refused" in result.stderr
    assert "notify webhook: FAILED: HTTP 500: no_service" in result.stderr
    assert "/services/T000/B000/XXXX" not in result.output  # the webhook URL carries a token
    assert "harvest: 1,282 records read" in result.stderr  # the run's own report is all there
    assert "digest: " in result.stderr and result.stdout.strip()
    run = open_db(tmp_path / "evla.db", create=False)["runs"].get(1)
    assert run["status"] == "ok"
    assert loads(run["counts"])["notify"] == {"email": "failed", "webhook": "failed"}
    assert {e.get("channel") for e in loads(run["errors"])} == {"email", "webhook"}


def test_a_wrong_password_is_the_servers_answer_and_nothing_is_sent(tmp_path, smtp):
    settings = email_settings(smtp.port, smtp_password="wrong")
    [delivery] = deliver_digest(settings, digest_files(tmp_path), [])
    assert (
        delivery.line() == "notify email: FAILED: SMTP 535 5.7.8 Authentication credentials invalid"
    )
    assert "wrong" not in delivery.line()
    assert smtp.messages == [] and smtp.logins  # it tried, over TLS, and was refused


def test_the_plain_part_drops_the_chart_file_the_mail_does_not_carry(tmp_path, smtp):
    [delivery] = deliver_digest(email_settings(smtp.port), digest_files(tmp_path), [])
    assert delivery.ok, delivery.detail
    [message] = smtp.messages
    plain = message.get_body(preferencelist=("plain",)).get_content()
    assert "d-pillars.svg" not in plain and "| Pillar | Proposals |" in plain
    assert message["Subject"] == "[evla-miner] evla-miner weekly digest, 2026-12-03"


def test_a_server_without_starttls_gets_no_password(tmp_path):
    server = SmtpServer(starttls=False)
    try:
        [delivery] = deliver_digest(email_settings(server.port), digest_files(tmp_path), [])
        assert delivery.line() == (
            "notify email: FAILED: 127.0.0.1 does not offer STARTTLS "
            "(set smtp_starttls = false only for a relay on this machine)"
        )
        assert server.logins == [] and server.messages == []
        # a relay on this machine, explicitly allowed: plain SMTP, no login
        local = email_settings(server.port, smtp_starttls=False, smtp_user=None)
        [delivery] = deliver_digest(local, digest_files(tmp_path), [])
        assert delivery.ok, delivery.detail
        assert server.over_tls == [False]
    finally:
        server.close()


def test_an_unreachable_webhook_names_the_host_but_not_the_token(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/SECRET"
    [delivery] = deliver_digest(NotifySettings(webhook_url=url), digest_files(tmp_path), [])
    assert not delivery.ok
    assert delivery.line().startswith("notify webhook: FAILED: ConnectionError: cannot reach ")
    assert "127.0.0.1:" in delivery.detail and "SECRET" not in delivery.detail


def test_no_notify_section_sends_nothing(tmp_path):
    assert channels(Settings.load().notify) == []
    assert deliver_digest(NotifySettings(), digest_files(tmp_path), []) == []


def test_secrets_come_from_the_environment_only(tmp_path):
    config = tmp_path / "evla.toml"
    config.write_text('[notify]\nsmtp_password = "in the repo"\n')
    with pytest.raises(
        BadInput, match=r"smtp_password is a secret .* set \$EVLA_NOTIFY_SMTP_PASSWORD"
    ):
        Settings.load(config)
    config.write_text("[notify]\nsmtp_starttls = false\n")
    settings = Settings.load(config, environ={"EVLA_NOTIFY_WEBHOOK_URL": "http://127.0.0.1/x"})
    assert settings.notify.smtp_starttls is False
    assert settings.notify.webhook_url == "http://127.0.0.1/x"
    assert "127.0.0.1/x" not in repr(settings)


def test_a_bad_boolean_is_a_one_line_error(tmp_path):
    config = tmp_path / "evla.toml"
    config.write_text('[notify]\nsmtp_starttls = "maybe"\n')
    with pytest.raises(BadInput, match=r"\[notify\] smtp_starttls: expected true or false"):
        Settings.load(config)


def test_webhook_text_escapes_slack_control_characters():
    paper = {
        "id": "2510.1",
        "title": "A <b> & B",
        "link": "https://arxiv.org/abs/2510.1",
        "score": 0.9,
    }
    text = webhook_text("digest", ["Harvest: 2 new"], [paper])
    assert text == (
        "*digest*\n• Harvest: 2 new\n1. <https://arxiv.org/abs/2510.1|A &lt;b&gt; &amp; B> (0.90)"
    )
