"""Keep credentials out of every log line: a text redactor and a ``logging.Filter`` using it.

The access log already writes redacted paths (see ``tweens.redacted_path``), but other lines
carry request paths too: waitress logs ``Exception while serving <path>`` with the raw path,
tracebacks quote URLs, plugins log what they like. The filter is the last line of defence: it
is installed on every handler (``install_redaction``), so whatever logger a record comes from,
it is rewritten before any handler formats it (and a log record factory redacts records as
they are made, for handlers added later).

What is redacted: anything shaped like a repoproxy token (``rp-<id>-<secret>``), any
``/t/<segment>`` path segment in any case and at any depth (conda's token prefix, also when
misplaced), the value of an ``Authorization`` or ``X-API-Key`` header quoted in text, and the
value of ``token=``, ``access_token=`` and ``api_key=`` query parameters, and quoted mapping
entries named ``token``, ``password`` or ``secret``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "<redacted>"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # the token shape of repoproxy.domain.tokens (rp-<10 alnum>-<43 alnum>), loosely: any
    # rp-<alnum>-<long alnum>, so truncated or differently sized tokens are caught as well
    (re.compile(r"rp-[A-Za-z0-9]{4,}-[A-Za-z0-9]{16,}"), REDACTED),
    # conda's /t/<token>/ prefix wherever it appears in a path (also /T/, nested, after a
    # channel name); the segment may be percent-encoded or malformed, so take it whole
    (re.compile(r"(/[tT]/)[^/?#\s\"']+"), r"\1" + REDACTED),
    # header values quoted in text: "Authorization: Bearer x", "'X-API-Key': 'x'", ...
    (re.compile(r"(?i)((?:authorization|x[-_]api[-_]key|http_authorization|http_x_api_key)"
                r"['\"]?\s*[:=]\s*['\"]?)(?:(?:bearer|basic|token)\s+)?[^\s'\",;}]+"),
     r"\1" + REDACTED),
    # secrets quoted as mapping entries: {'token': 'x'}, "password": "x"
    (re.compile(r"(?i)(['\"](?:token|access_token|api_key|password|secret)['\"]\s*[:=]\s*"
                r"['\"])[^'\"]*"), r"\1" + REDACTED),
    # secret query parameters, raw or percent-encoded separators
    (re.compile(r"(?i)((?:^|[?&;\s]|%26|%3f)(?:token|access_token|api_key)(?:=|%3d))"
                r"[^&\s#'\"]*"), r"\1" + REDACTED),
)


#: a word one of the patterns above needs (case-insensitively, a superset): text without any
#: of them (most access log lines) is returned after these substring tests, which cost a tenth
#: of one search of a regular expression of alternatives. "token" only where a pattern can
#: follow it (before "=", "%3d" or a quote): an access line naming a token identity,
#: ``token:<name>``, is not searched five times more
_TRIGGERS = ("rp-", "/t/", "authoriz", "api-key", "api_key", "token=", "token%3d", "token'",
             'token"', "password", "secret")


def redact(text: str) -> str:
    """``text`` with every credential-shaped part replaced by ``<redacted>``."""
    lowered = text.lower()
    if not any(word in lowered for word in _TRIGGERS):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, traceback and stack text with :func:`redact`.

    Records are shared by every handler; rewriting them in place (message formatted once,
    ``args`` dropped) makes the filter idempotent and cheap when installed on several handlers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        done = record.__dict__.get("_repoproxy_redacted")
        if (done is not None and record.args is None and done[0] is record.msg
                and done[1] is record.exc_text and done[2] is record.stack_info):
            # redacted when made (the record factory) and not changed since: a handler's
            # filter has nothing to add (an access line was redacted twice, a tenth of its cost)
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw template, still redacted
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            # formatted here so the formatter uses this (redacted) text instead
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._repoproxy_redacted = (record.msg, record.exc_text, record.stack_info)
        return True


_FILTER = RedactingFilter()


def install_redaction() -> None:
    """Redact every log record: at creation, and on every handler of every logger there now.

    The record factory covers loggers and handlers created later (a plugin's, say); the
    handler filters cover records made by a factory installed over this one. Called after
    logging is configured and again once the server is built. Idempotent.
    """
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "repoproxy_redacts", False):

        def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = factory(*args, **kwargs)
            _FILTER.filter(record)
            return record

        redacting_factory.repoproxy_redacts = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(redacting_factory)
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values()
                if isinstance(lg, logging.Logger)]
    handlers = [logging.lastResort] if logging.lastResort is not None else []
    for lg in loggers:
        handlers.extend(lg.handlers)
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
