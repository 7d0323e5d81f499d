"""Keep the service log about the service: BentoML logs every rejected request (a 422, a 404) at ERROR
with a full traceback, which under bad traffic buries real failures and costs CPU. Client errors
become one INFO line; server errors keep their traceback."""

from __future__ import annotations

import logging

#: The logger BentoML 1.4 reports handler exceptions on.
BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"


class ClientErrorsAsOneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[1] is None:
            return True
        exc = record.exc_info[1]
        if _is_client_error(exc):
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _is_client_error(exc: BaseException) -> bool:
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return True
    return isinstance(exc, BentoMLException) and exc.error_code.value < 500


def quiet_client_errors() -> None:
    logger = logging.getLogger(BENTOML_HTTP_LOGGER)
    if not any(isinstance(f, ClientErrorsAsOneLine) for f in logger.filters):
        logger.addFilter(ClientErrorsAsOneLine())
