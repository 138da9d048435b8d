"""``evla serve``: the web triage page over the same db (see ``evla_miner.web``)."""

from __future__ import annotations

import click

from .common import pass_app


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. Anything but loopback needs --token.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--token",
    envvar="EVLA_SERVE_TOKEN",
    help="Access token every browser must present once (the printed URL carries it). "
    "Required when --host is not a loopback address. Default: $EVLA_SERVE_TOKEN.",
)
@click.option(
    "--reviewer",
    envvar="EVLA_REVIEWER",
    help="Name recorded with each decision. Default: $EVLA_REVIEWER, else your login name.",
)
@pass_app
def serve(app, host, port, token, reviewer):
    """Serve the triage page: the proposal queue, paper views, decisions, exports.

    Decisions go through the same functions as `evla review`, so the page and
    the CLI can be used side by side, also while `evla weekly` runs.

    \b
    Examples:
      evla serve                                  # http://127.0.0.1:8765/
      EVLA_SERVE_TOKEN=$(openssl rand -hex 16) evla serve --host 0.0.0.0
    """
    from ..web.app import create_app, make_server

    web_app = create_app(app.resolved_db_path, access_token=token, host=host, reviewer=reviewer)
    server = make_server(web_app, host, port)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{getattr(server, 'effective_port', port)}/"
    click.echo(
        f"evla serve: {app.resolved_db_path} at {url}{'?token=' + token if token else ''}  "
        "(Ctrl-C stops)"
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


COMMANDS = [serve]
