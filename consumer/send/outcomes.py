"""AWS errors sorted into what to do about them.

transient (throttling, 5xx, timeouts, connection errors): retry with backoff and jitter, never
dead-letter. bad data (InvalidInputException): one bad event rejects the whole call, so bisect to
find it and send the rest. fatal (credentials, permissions, unknown tracker): stop; nothing the
data could fix.
"""

from __future__ import annotations

from enum import Enum

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
BAD_DATA_CODES = frozenset({"InvalidInputException"})
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})


class ErrorKind(Enum):
    TRANSIENT = "transient"
    BAD_DATA = "bad_data"
    FATAL = "fatal"


def classify(exc: BaseException) -> ErrorKind:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in BAD_DATA_CODES:
            return ErrorKind.BAD_DATA
        if code in TRANSIENT_CODES or status >= 500:
            return ErrorKind.TRANSIENT
        return ErrorKind.FATAL
    if isinstance(
        exc,
        EndpointConnectionError | ConnectionClosedError | ReadTimeoutError | ConnectTimeoutError,
    ):
        return ErrorKind.TRANSIENT
    if isinstance(exc, NoCredentialsError):
        return ErrorKind.FATAL
    if isinstance(exc, BotoCoreError):
        return ErrorKind.TRANSIENT
    return ErrorKind.FATAL


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def outcome(exc: BaseException) -> str:
    kind = classify(exc)
    if kind is ErrorKind.BAD_DATA:
        return "invalid_input"
    if kind is ErrorKind.TRANSIENT:
        return "throttled" if error_code(exc) in THROTTLING_CODES else "transient"
    return "fatal"


def fatal_message(exc: BaseException, operation: str = "PutEvents") -> str:
    code = error_code(exc)
    on_dataset = operation in ("PutItems", "PutUsers", "PutActions")
    hints = {
        "AccessDeniedException": (
            f"grant personalize:{operation} on the "
            f"{'dataset' if on_dataset else 'event tracker'} to this role"
        ),
        "UnrecognizedClientException": "the AWS credentials are not valid",
        "InvalidSignatureException": "the AWS secret key or clock is wrong",
        "ExpiredTokenException": "the AWS session token expired",
        "ResourceNotFoundException": (
            "no such dataset: the mapping file's datasetArn is wrong"
            if on_dataset
            else "no such event tracker: PERSONALIZE_TRACKING_ID (or the mapping file's "
            "trackingId) or AWS_REGION is wrong"
        ),
        "NoCredentialsError": "no AWS credentials found in the default chain",
    }
    hint = hints.get(code, "see the AWS error")
    message = (
        exc.response.get("Error", {}).get("Message", "") if isinstance(exc, ClientError) else ""
    )
    return f"{operation} refused with {code}: {hint}" + (f" ({message})" if message else "")
