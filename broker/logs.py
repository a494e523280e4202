"""The broker's logging setup: text or JSON lines (`log_format: json`, one object per
line for log shippers), and no patient data above DEBUG from any logger.

The broker's own records carry no patient values above DEBUG: that is decided where
each record is made. Libraries are another matter: python-hl7 quotes whole fields when
an escape is bad, pydicom quotes values that break their VR or character set (and
warns as well as logs), pynetdicom logs the exceptions pydicom raises with them. Their
records above DEBUG keep their level and logger and lose their text (issue #15, defect
3; RELIABILITY.md S6); `log_level: DEBUG` shows everything.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from pynetdicom import _config as pynetdicom_config

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Loggers whose messages may quote field values (`py.warnings`: Python warnings,
#: which pydicom raises beside its log lines, routed into logging).
QUOTING_LOGGERS = ("hl7", "pydicom", "pynetdicom", "py.warnings")
#: ... and the packages themselves: python-hl7 names its loggers after file paths.
QUOTING_PACKAGES = ("hl7", "pydicom", "pynetdicom")
#: Only their lines, per association or job, and only when debugging.
CHATTY_LOGGERS = ("pynetdicom", "apscheduler", "alembic", "uvicorn")
WITHHELD = "message withheld: it may quote patient data (log_level DEBUG shows it)"


class WithholdQuotedValues(logging.Filter):
    """Blanks the text (and traceback) of records from `QUOTING_LOGGERS`, or made by
    code of `QUOTING_PACKAGES` whatever their logger's name."""

    def __init__(self) -> None:
        super().__init__()
        self._folders = tuple(_folder(name) for name in QUOTING_PACKAGES)

    def filter(self, record: logging.LogRecord) -> bool:
        named = any(record.name == name or record.name.startswith(f"{name}.") for name in QUOTING_LOGGERS)
        if named or record.pathname.startswith(self._folders):
            record.msg, record.args = WITHHELD, None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _folder(package: str) -> str:
    """The package's directory (found, not imported), with a trailing separator."""
    spec = importlib.util.find_spec(package)
    origin = spec.origin if spec is not None and spec.origin else f"/nonexistent/{package}/__init__.py"
    return str(Path(origin).parent) + os.sep


def configure(level: str, log_format: str) -> None:
    """Root handler on stderr in the configured form; libraries filtered as above."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    if level != "DEBUG":
        handler.addFilter(WithholdQuotedValues())
    logging.basicConfig(level=level, handlers=[handler])
    logging.captureWarnings(True)  # to the handler (and its filter), not raw to stderr
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    _pynetdicom_logging(debug=level == "DEBUG")


def _pynetdicom_logging(*, debug: bool) -> None:
    """pynetdicom decodes and pretty-prints every request's identifier, and runs its
    per-PDU and per-message log handlers, whether or not its logger will write the lines
    (which quote patient values): that work is done only when debugging."""
    pynetdicom_config.LOG_REQUEST_IDENTIFIERS = debug
    pynetdicom_config.LOG_HANDLER_LEVEL = "standard" if debug else "none"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
