"""The ``BACKPROP_MAX_*`` variables: a limit is a ceiling, never an allocation.

Raising a limit far past any file made small files fail to read: ``f.read(cap + 1)``
allocated the limit before reading a byte ("not enough memory" at 10**12), and values past
a C ``ssize_t`` were "cannot fit 'int' into an index-sized integer" or "Python int too large
to convert to C ssize_t" instead of a word about the variable.
"""

from __future__ import annotations

import os
import re
import sys

import pytest

from backprop._limits import limit, read_user_file
from backprop.datasets import load_dataset

#: The largest value a limit may be set to: room for ``cap + 1`` in a C ``ssize_t``.
MAX_LIMIT = sys.maxsize // 2


@pytest.mark.parametrize("value", [10**12, MAX_LIMIT])
def test_a_small_file_reads_whatever_the_limit(tmp_path, monkeypatch, value):
    monkeypatch.setenv("BACKPROP_MAX_CONFIG_BYTES", str(value))
    path = tmp_path / "c.json"
    path.write_bytes(b'{"epochs": 2}\n')
    assert read_user_file(path, "config file", "config_bytes") == b'{"epochs": 2}\n'
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    assert read_user_file(empty, "config file", "config_bytes") == b""


def test_a_download_reads_whatever_the_limit(tmp_path, monkeypatch):
    # response.read(cap + 1) allocated the limit before reading a byte: a limit raised to
    # 10**12 made every download "not enough memory"; past it, nothing more is read
    from backprop.datasets import DatasetError
    from backprop.datasets.mnist import fetch_url

    path = tmp_path / "file.gz"
    path.write_bytes(b"x" * 1000)
    monkeypatch.setenv("BACKPROP_MAX_DOWNLOAD_BYTES", str(10**12))
    assert fetch_url(path.as_uri()) == b"x" * 1000
    monkeypatch.setenv("BACKPROP_MAX_DOWNLOAD_BYTES", "999")
    with pytest.raises(DatasetError, match="the download is 1000 bytes; the limit is 999"):
        fetch_url(path.as_uri())


def test_a_download_past_its_stated_limit_is_refused_before_reading(monkeypatch):
    # a Content-Length of 10**9 on a 1,000-byte body allocated 954 MiB (a piece of the size
    # the server stated), and 10**12 was a MemoryError; a body without one reads in pieces
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from backprop.datasets import DatasetError
    from backprop.datasets.mnist import fetch_url

    class Lying(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            if self.path == "/stated":
                self.send_header("Content-Length", str(10**12))
            self.end_headers()
            self.wfile.write(b"x" * 1000)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Lying)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("BACKPROP_MAX_DOWNLOAD_BYTES", str(10**13))
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert fetch_url(url + "/unstated") == b"x" * 1000
        monkeypatch.setenv("BACKPROP_MAX_DOWNLOAD_BYTES", str(10**6))
        with pytest.raises(DatasetError, match=r"/stated: the download is 1000000000000 bytes"):
            fetch_url(url + "/stated")
    finally:
        server.shutdown()
        server.server_close()


def test_a_download_that_trickles_is_given_up():
    """A server that sends a byte now and then never reaches the socket's timeout, which
    times each wait alone: the download went on for as long as the server liked. Under
    min_bytes_per_s over window_s it is given up (here 1,000 bytes/s over 0.3 s; the
    defaults are 1 KiB/s over a minute)."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from backprop.datasets import DatasetError
    from backprop.datasets.mnist import fetch_url

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "400")
            self.end_headers()
            try:
                for _ in range(400):  # a byte every 20 ms: 50 bytes a second, for 8 s
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.02)
            except OSError:  # the client gave up
                pass

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/slow.gz"
        start = time.monotonic()
        with pytest.raises(
            DatasetError,
            match=r"/slow.gz: the download stalled \(\d+ bytes in "
            r"the last 0 s, under 1000 bytes a second\); given up",
        ):
            fetch_url(url, min_bytes_per_s=1000, window_s=0.3)  # fmt: skip
        assert time.monotonic() - start < 3
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not os.path.isfile("/proc/self/status"), reason="Linux's /proc")
def test_a_file_longer_than_its_stated_size_is_read_on_up_to_the_limit(monkeypatch):
    """A file may hold more than fstat says (/proc's say 0 bytes; a file being written
    grows): the read goes on past the stated size, and stops one byte past the limit."""
    data = read_user_file("/proc/self/status", "status file", "config_bytes")
    assert data.startswith(b"Name:") and data.endswith(b"\n") and len(data) > 100
    monkeypatch.setenv("BACKPROP_MAX_CONFIG_BYTES", "10")
    with pytest.raises(ValueError, match=r"grew while being read to 11 bytes; the limit is 10 "):
        read_user_file("/proc/self/status", "status file", "config_bytes")


@pytest.mark.parametrize(
    "text", [str(10**30), str(2**63 - 2), str(MAX_LIMIT + 1), "0", "-5", "lots", "1e12"]
)
def test_a_limit_outside_its_range_is_named_with_the_range(monkeypatch, text):
    monkeypatch.setenv("BACKPROP_MAX_CONFIG_BYTES", text)
    with pytest.raises(ValueError) as info:
        limit("config_bytes")
    assert str(info.value) == (
        f"BACKPROP_MAX_CONFIG_BYTES is {text!r}; expected a positive integer up to {MAX_LIMIT}"
    )
    monkeypatch.setenv("BACKPROP_MAX_CONFIG_BYTES", f" {MAX_LIMIT} ")  # the top is allowed
    assert limit("config_bytes") == MAX_LIMIT


def test_a_csv_line_limit_past_the_range_is_named_and_any_in_it_reads(tmp_path, monkeypatch):
    """``readline(cap + 1)`` at 10**30 was "Python int too large to convert to C ssize_t"."""
    path = tmp_path / "iris.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    monkeypatch.setenv("BACKPROP_MAX_CSV_LINE_CHARS", str(10**30))
    message = f"BACKPROP_MAX_CSV_LINE_CHARS is '{10**30}'; expected a positive integer up to "
    with pytest.raises(ValueError, match="^" + re.escape(message) + f"{MAX_LIMIT}$"):
        load_dataset(path, target="y", seed=0)
    monkeypatch.setenv("BACKPROP_MAX_CSV_LINE_CHARS", str(MAX_LIMIT))
    ds = load_dataset(path, target="y", seed=0)
    assert ds.n_train + ds.n_test == 20
