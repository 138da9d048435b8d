"""Delivery of the weekly digest to reviewers: e-mail over SMTP and a Slack-compatible webhook.

The digest is written to ``<db dir>/reports/`` either way; delivery is a courtesy
on top. So a channel that fails (server down, bad password, webhook 500) is
reported as one line and recorded with the weekly run, and never fails the run:
the harvest, the scores and the digest on disk are what matter, and cron would
otherwise retry a whole week's work because a mail relay was busy.

E-mail: one ``multipart/alternative`` message, the Markdown digest as the
plain-text part and the self-contained HTML page (chart inlined) as the HTML
part; STARTTLS with certificate checks before any credential is sent; the
password only from the environment (see ``NotifySettings``).

The plain-text part is the Markdown digest without its chart line (the SVG file it
points to is not attached; the HTML part carries the chart inline).

Webhook: a JSON POST ``{"text": ...}`` in Slack's mrkdwn (``<url|title>`` links),
which Slack incoming webhooks, Mattermost and Rocket.Chat all accept.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import urlsplit

import requests

from ..core.errors import one_line
from ..core.settings import NotifySettings

WEBHOOK_PROPOSALS = 10


@dataclass(frozen=True)
class Delivery:
    """What happened on one channel: ``detail`` is the line a user sees."""

    channel: str  # "email" | "webhook"
    ok: bool
    detail: str

    def line(self) -> str:
        return f"notify {self.channel}: {'sent' if self.ok else 'FAILED'}: {self.detail}"


def recipients(settings: NotifySettings) -> list[str]:
    return [a.strip() for a in (settings.email_to or "").split(",") if a.strip()]


def channels(settings: NotifySettings) -> list[str]:
    """The channels the settings ask for (none by default)."""
    wanted = []
    if recipients(settings):
        wanted.append("email")
    if settings.webhook_url:
        wanted.append("webhook")
    return wanted


def digest_title(markdown: str) -> str:
    """The digest's own title: its first Markdown heading."""
    first = next((line for line in markdown.splitlines() if line.startswith("# ")), "# digest")
    return first[2:].strip()


def digest_subject(settings: NotifySettings, markdown: str) -> str:
    """The digest's title after the configured prefix, so a mail filter can sort it."""
    return f"{settings.subject_prefix} {digest_title(markdown)}".strip()


def plain_text(markdown: str) -> str:
    """The Markdown digest without image lines: in a mail the chart file is not there."""
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("![")) + "\n"


def digest_message(settings: NotifySettings, markdown: str, html_page: str) -> EmailMessage:
    """The e-mail: plain text first, HTML as the preferred alternative."""
    message = EmailMessage()
    message["Subject"] = digest_subject(settings, markdown)
    message["From"] = settings.email_from or settings.smtp_user or f"evla-miner@{socket.getfqdn()}"
    message["To"] = ", ".join(recipients(settings))
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="evla-miner")
    message.set_content(plain_text(markdown))
    message.add_alternative(html_page, subtype="html")
    return message


def send_email(settings: NotifySettings, message: EmailMessage) -> str:
    """Send over SMTP; raises ``smtplib.SMTPException`` / ``OSError`` on failure.

    STARTTLS is used whenever the server offers it, and always before AUTH, so the
    password and the digest never cross the wire in clear; a server that does not
    offer it is refused unless ``smtp_starttls`` is off (a relay on this machine).
    """
    if not settings.smtp_host:
        raise smtplib.SMTPException("no SMTP server: set [notify] smtp_host")
    context = ssl.create_default_context(cafile=settings.smtp_ca_file)
    try:
        connection = smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds
        )
    except OSError as exc:
        raise OSError(
            f"cannot connect to {settings.smtp_host}:{settings.smtp_port}: {one_line(exc)}"
        ) from exc
    with connection as smtp:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        elif settings.smtp_starttls:
            raise smtplib.SMTPException(
                f"{settings.smtp_host} does not offer STARTTLS "
                "(set smtp_starttls = false only for a relay on this machine)"
            )
        if settings.smtp_user:
            if not settings.smtp_password:
                raise smtplib.SMTPException(
                    "smtp_user is set but $EVLA_NOTIFY_SMTP_PASSWORD is not"
                )
            smtp.login(settings.smtp_user, settings.smtp_password)
        refused = smtp.send_message(message)
    accepted = [r for r in recipients(settings) if r not in refused]
    if not accepted:
        raise smtplib.SMTPException(f"every recipient was refused: {', '.join(refused)}")
    return f"to {', '.join(accepted)} via {settings.smtp_host}:{settings.smtp_port}" + (
        f" ({len(refused)} refused: {', '.join(refused)})" if refused else ""
    )


def webhook_text(markdown_title: str, summary: list[str], proposals: list[dict]) -> str:
    """The digest as Slack mrkdwn: title, summary lines, the top proposals as links."""
    lines = [f"*{_slack_escape(markdown_title)}*"]
    lines += [f"• {_slack_escape(line)}" for line in summary]
    for number, item in enumerate(proposals[:WEBHOOK_PROPOSALS], 1):
        title = _slack_escape(item.get("title") or item["id"])
        link = item.get("link")
        score = item.get("score")
        lines.append(
            f"{number}. "
            + (f"<{link}|{title}>" if link else title)
            + (f" ({score:.2f})" if isinstance(score, (int, float)) else "")
        )
    if len(proposals) > WEBHOOK_PROPOSALS:
        lines.append(f"… and {len(proposals) - WEBHOOK_PROPOSALS} more in the digest")
    return "\n".join(lines)


def _slack_escape(text: str) -> str:
    """Slack's three control characters; everything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def post_webhook(settings: NotifySettings, text: str) -> str:
    """POST ``{"text": ...}``; raises ``requests.RequestException`` or ``ValueError`` on failure."""
    if not settings.webhook_url:
        raise ValueError("no webhook URL: set $EVLA_NOTIFY_WEBHOOK_URL")
    response = requests.post(
        settings.webhook_url, json={"text": text}, timeout=settings.timeout_seconds
    )
    if response.status_code >= 300:
        body = " ".join((response.text or "").split())[:120]
        raise ValueError(f"HTTP {response.status_code}" + (f": {body}" if body else ""))
    return "posted"


def _digest_summary(markdown: str) -> list[str]:
    """The digest's summary bullets (the lines between the title and the first section)."""
    lines = []
    for line in markdown.splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("- "):
            lines.append(line[2:])
    return lines


def deliver_digest(settings: NotifySettings, digest: dict, proposals: list[dict]) -> list[Delivery]:
    """Send the written digest (``digest``: paths by kind, as ``write_digest`` returns)
    on every configured channel; one ``Delivery`` per channel, never an exception."""
    senders = {"email": _email, "webhook": _webhook}
    return [
        _attempt(channel, senders[channel], settings, digest, proposals)
        for channel in channels(settings)
    ]


def _attempt(channel, send, settings, digest, proposals) -> Delivery:
    """One channel; any failure, even an unexpected one, becomes a failed ``Delivery``
    so the run that already harvested and scored a week of papers is never lost to it."""
    try:
        return Delivery(channel, True, send(settings, digest, proposals))
    except Exception as exc:  # noqa: BLE001 - delivery must never fail the run
        return Delivery(channel, False, _reason(exc, settings))


def _email(settings: NotifySettings, digest: dict, proposals: list[dict]) -> str:
    markdown = Path(digest["markdown"]).read_text(encoding="utf-8")
    page = Path(digest["html"]).read_text(encoding="utf-8")
    return send_email(settings, digest_message(settings, markdown, page))


def _webhook(settings: NotifySettings, digest: dict, proposals: list[dict]) -> str:
    markdown = Path(digest["markdown"]).read_text(encoding="utf-8")
    text = webhook_text(digest_title(markdown), _digest_summary(markdown), proposals)
    return post_webhook(settings, text)


def _reason(exc: BaseException, settings: NotifySettings) -> str:
    """One line, and never the webhook URL's path (it carries a token) or a password."""
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        message = error.decode(errors="replace") if isinstance(error, bytes) else str(error or "")
        return f"SMTP {exc.smtp_code} {one_line(Exception(message))}".strip()
    if isinstance(exc, requests.RequestException):
        where = urlsplit(settings.webhook_url or "")
        return f"{type(exc).__name__}: cannot reach {where.scheme}://{where.netloc}"
    text = one_line(exc)
    for secret in (settings.webhook_url, settings.smtp_password):
        if secret:
            text = text.replace(secret, "***")
    return text
