"""API errors with Toxiproxy's status codes and messages.

Clients of a real Toxiproxy match on these (`proxy not found`, 409 on duplicates, ...),
so the texts are kept verbatim. Each is a fresh exception so tracebacks do not pile up.
"""

from __future__ import annotations

from http import HTTPStatus


class ApiError(Exception):
    """An error the API answers with `{"error": message, "status": status}`."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, object]:
        return {"error": self.message, "status": self.status}


def bad_request_body(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", HTTPStatus.BAD_REQUEST)


def missing_field(field: str) -> ApiError:
    return ApiError(f"missing required field: {field}", HTTPStatus.BAD_REQUEST)


def proxy_not_found() -> ApiError:
    return ApiError("proxy not found", HTTPStatus.NOT_FOUND)


def proxy_already_exists() -> ApiError:
    return ApiError("proxy already exists", HTTPStatus.CONFLICT)


def invalid_stream() -> ApiError:
    return ApiError(
        "stream was invalid, can be either upstream or downstream", HTTPStatus.BAD_REQUEST
    )


def invalid_toxic_type() -> ApiError:
    return ApiError("invalid toxic type", HTTPStatus.BAD_REQUEST)


def toxic_already_exists() -> ApiError:
    return ApiError("toxic already exists", HTTPStatus.CONFLICT)


def toxic_not_found() -> ApiError:
    return ApiError("toxic not found", HTTPStatus.NOT_FOUND)


def invalid_address(detail: str) -> ApiError:
    # Toxiproxy only finds a bad address when it fails to listen or dial (500); we
    # check up front and call it what it is, a bad request.
    return ApiError(detail, HTTPStatus.BAD_REQUEST)


def listen_failed(detail: str) -> ApiError:
    # Same status as Toxiproxy for a port already in use: the server could not do it.
    return ApiError(detail, HTTPStatus.INTERNAL_SERVER_ERROR)
