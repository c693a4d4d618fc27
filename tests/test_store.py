"""Opening a store: nothing is created by reading, files that are not stores are refused
untouched, and a server that refuses or never answers is one line within seconds."""
import http.server
import os
import threading
import time

import pytest

from benchmark.errors import TrackingError
from benchmark.store import check_readable, check_reachable, resolve_tracking_uri
from tests.silent_server import SilentServer, closed_port_url


def one_line(err) -> str:
    message = str(err.value)
    assert '\n' not in message
    return message


def test_resolving_the_default_store_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv('MLFLOW_TRACKING_URI', raising=False)
    uri = resolve_tracking_uri(None, tmp_path / 'work')
    assert uri.endswith('/work/mlflow.db') and not (tmp_path / 'work').exists()
    with pytest.raises(TrackingError) as err:
        check_readable(uri)
    assert 'no tracking store at' in one_line(err) and not (tmp_path / 'work').exists()


@pytest.mark.parametrize('content, says', [(b'', 'an empty file'),
                                           (b'id,name\n1,x\n' * 50, 'not a SQLite database')])
def test_a_file_that_is_not_a_store_is_refused_untouched(tmp_path, content, says):
    path = tmp_path / 'mlflow.db'
    path.write_bytes(content)
    with pytest.raises(TrackingError) as err:
        check_readable(f'sqlite:///{path}')
    assert says in one_line(err) and str(path) in one_line(err)
    assert path.read_bytes() == content


@pytest.mark.parametrize('server', ['refused', 'silent'])
def test_a_server_that_does_not_answer_is_one_line_within_seconds(server, monkeypatch):
    monkeypatch.delenv('MLFLOW_HTTP_REQUEST_TIMEOUT', raising=False)
    with SilentServer(lifetime_s=30) as silent:
        url = closed_port_url() if server == 'refused' else silent.url
        start = time.monotonic()
        for check in (check_reachable, check_readable):
            with pytest.raises(TrackingError) as err:
                check(url)
            assert f'tracking store {url} cannot be reached' in one_line(err)
    assert time.monotonic() - start < 2 * 3 + 2  # two probes of at most 3 s each
    assert ('no answer within 3 s' in one_line(err)) == (server == 'silent')
    assert 'MLFLOW_HTTP_REQUEST_TIMEOUT' not in os.environ  # set only once a server answered


def test_a_server_that_answers_passes_and_bounds_mlflows_waits(monkeypatch):
    monkeypatch.delenv('MLFLOW_HTTP_REQUEST_TIMEOUT', raising=False)
    monkeypatch.delenv('MLFLOW_HTTP_REQUEST_MAX_RETRIES', raising=False)

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # an answer, even an error status, is an answering server
            self.send_error(404)

        def log_message(self, *args):
            pass
    httpd = http.server.HTTPServer(('127.0.0.1', 0), NotFound)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        check_reachable(f'http://127.0.0.1:{httpd.server_address[1]}')
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert os.environ['MLFLOW_HTTP_REQUEST_TIMEOUT'] == '10'
    assert os.environ['MLFLOW_HTTP_REQUEST_MAX_RETRIES'] == '0'
