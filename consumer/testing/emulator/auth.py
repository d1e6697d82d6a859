"""The emulator's signature checks, the ones AWS makes before it looks at the body.

Kept apart from the routing in `app` so each module stays readable on its own; both checks apply
to every `personalize-events` operation alike.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

SIGNING_SERVICE = "personalize"


def check_signature(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """SigV4 presence and scope, as AWS checks them before the signature itself.

    Returns (error code, message) or None. The signature is not verified: the emulator has no
    secret keys, and any dummy credentials must work.
    """
    authorization = headers.get("authorization")
    if authorization is None:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    prefix = "AWS4-HMAC-SHA256 "
    if not authorization.startswith(prefix + "Credential="):
        return "IncompleteSignatureException", (
            "Authorization header requires 'Credential' parameter and the AWS4-HMAC-SHA256 "
            "algorithm."
        )
    params: dict[str, str] = {}
    for part in authorization[len(prefix) :].split(","):
        name, _, value = part.strip().partition("=")
        params[name] = value
    missing = [
        name for name in ("Credential", "SignedHeaders", "Signature") if not params.get(name)
    ]
    problems = [f"Authorization header requires '{name}' parameter." for name in missing]
    if "x-amz-date" not in headers and "date" not in headers:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or")
        problems[-1] += " a 'Date' header."
    if problems:
        return "IncompleteSignatureException", " ".join(problems)
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return "IncompleteSignatureException", (
            "Credential must have exactly 5 slash-delimited elements, "
            "e.g. keyid/date/region/service/term."
        )
    if scope[3] != SIGNING_SERVICE:
        return "InvalidSignatureException", (
            f"Credential should be scoped to correct service: '{SIGNING_SERVICE}'."
        )
    return None


def unknown_key(headers: Mapping[str, str], access_keys: Collection[str]) -> tuple[str, str] | None:
    """The `access_keys` fault: a signature by an access key id the account does not have."""
    if not access_keys:
        return None
    credential = headers.get("authorization", "").partition("Credential=")[2]
    if credential.split("/", 1)[0] in access_keys:
        return None
    return "UnrecognizedClientException", "The security token included in the request is invalid."
