"""``backprop playground``: a local, offline web app that shows backpropagation number by
number, with the engine behind every number.

The Python engine computes every number and formats it (:mod:`backprop.formatting`); the
page only draws. :mod:`.tutorial` is the seed's network phase by phase (the numbers of
``backprop explain``), :mod:`.training` a small MLP learning 2-D data, :mod:`.session` one
page's state and frames, :mod:`.server` the HTTP server and its checks. See
docs/playground.md.
"""

from __future__ import annotations

import errno
import sys
import webbrowser
from pathlib import Path

import click

from .server import PlaygroundServer, make_server

__all__ = ["PlaygroundServer", "make_server", "playground"]


@click.command(short_help="The tutorial and live training, in the browser.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Another machine's requests are served at the address "
              "given here (token-protected): --host 192.0.2.2 exposes the playground to that "
              "network; a wildcard (0.0.0.0, ::) answers only requests to a loopback "
              "name.")  # fmt: skip
@click.option("--no-browser", is_flag=True, help="Print the URL without opening a browser.")
@click.option(
    "--weights",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.json",
    help="Tutorial weights, as backprop explain --weights: keys w, b1, u, b2.",
)
def playground(port: int, host: str, no_browser: bool, weights: Path | None) -> int:
    """See backpropagation happen in the browser, every number from the engine.

    Starts a local web server (offline: the page loads nothing from outside) and opens the
    tutorial: the seed's 2-3-2 network stepped phase by phase with the numbers of
    backprop explain. Train mode trains any small MLP on 2-D data live. Ctrl-C stops it.

    \b
    Examples:
      backprop playground
      backprop playground --port 9000 --no-browser
      backprop playground --weights my_weights.json
    """
    from ..tutorial import ExplainError, example_inputs, load_weights
    from .tutorial import MAX_UNITS, Tutorial

    start = example_inputs()
    if weights is not None:
        start.update(load_weights(weights))
        try:  # what the page can draw, checked before the server starts (not per page)
            Tutorial(start)
        except ExplainError as e:
            raise ExplainError(
                f"weights file {weights}: {e} (the playground starts from the tutorial's x and "
                f"t, 2 inputs and 2 outputs, with up to {MAX_UNITS} hidden units)"
            ) from None
    try:
        server = make_server(host, port, start)
    except OSError as e:
        busy = e.errno == errno.EADDRINUSE and port != 0
        hint = " (another playground? --port 0 takes any free port)" if busy else ""
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {e.strerror or e}{hint}"
        ) from None
    url = server.url
    to_stderr = sys.stdout is None  # (>&-: the tokened URL would be printed nowhere)
    click.echo(f"backprop playground: {url}", err=to_stderr)
    click.echo("Ctrl-C stops it.", err=to_stderr)
    if host not in ("127.0.0.1", "localhost", "::1"):
        where = host or "every address of this machine"  # ('' binds them all)
        click.echo(f"Warning: listening on {where}, not only this machine.", err=True)
    if not no_browser:
        webbrowser.open(url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        click.echo("Stopping the playground.", err=to_stderr)
    finally:
        server.stopping.set()
        for s in list(server.sessions.values()):
            s.close()
        server.server_close()
    return 0
