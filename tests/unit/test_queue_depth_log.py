"""waitress's "Task queue depth" warning, rate-limited (web/server.py ``QueueDepthLog``): the
first one is logged, the ones within the interval only counted, the next after it logged with
the deepest queue and the count; the dispatcher repoproxy builds uses it."""

from __future__ import annotations

import logging
from typing import Any

from repoproxy.web.server import QueueDepthLog, make_server


def test_first_warning_then_one_per_interval(caplog: Any, monkeypatch: Any) -> None:
    now = [1000.0]
    monkeypatch.setattr("repoproxy.web.server.time.monotonic", lambda: now[0])
    log = QueueDepthLog(interval=60)
    with caplog.at_level(logging.WARNING, logger="waitress.queue"):
        log.warning("Task queue depth is %d", 2)
        for depth in (5, 3, 1):
            now[0] += 10
            log.warning("Task queue depth is %d", depth)
        assert len(caplog.records) == 1
        now[0] += 31  # 61 s after the first
        log.warning("Task queue depth is %d", 1)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("Task queue depth is 2 (deepest of 1 warnings")
    assert messages[1].startswith("Task queue depth is 5 (deepest of 4 warnings")


def test_the_server_dispatcher_uses_it() -> None:
    server = make_server(lambda environ, start_response: [], None, host="127.0.0.1", port=0,
                         threads=1)
    try:
        assert isinstance(server.task_dispatcher.queue_logger, QueueDepthLog)
    finally:
        server.close()
        server.task_dispatcher.shutdown()
