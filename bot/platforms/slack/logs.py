"""The logger handed to Bolt and slack_sdk: quiet, and with credentials and request bodies redacted."""

from __future__ import annotations

import logging
import re


def quiet_logger(name: str) -> logging.Logger:
    """No DEBUG records (they dump request bodies); credentials and bodies redacted.
    Bolt copies its filters to its own loggers."""
    logger = logging.getLogger(name)
    logger.setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
    if not any(isinstance(f, Redact) for f in logger.filters):
        logger.addFilter(Redact())
    return logger


class Redact(logging.Filter):
    """Removes tokens, response URLs and request bodies from library log records."""

    SECRET = re.compile(
        r"xox[a-z]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+"
        r"|((?:response_url[\"']?|\bcode)\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
        r"|https?(?::|%3A)(?://|%2F%2F)hooks\.slack\.com[^\s\"'&,}]*",
        re.IGNORECASE,
    )
    NOISE = ("As you gave `client` as well",)  # Bolt reads SLACK_BOT_TOKEN itself; the client is what we pass

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(self.NOISE):
            return False
        cleaned = message.split(", body: ", 1)[0] + (")" if ", body: " in message else "")
        cleaned = self.SECRET.sub(lambda m: (m.group(1) or "") + "[redacted]", cleaned)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
