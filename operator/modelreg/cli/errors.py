"""Every failure of a user command as one line (``error: <line>`` on stderr, exit code 1)."""

from __future__ import annotations

import json
import re
from typing import Any

from modelreg import GROUP


class CliError(Exception):
    """An expected failure: its message is printed as is (one line), exit code 1."""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def api_body(err: Any) -> dict[str, Any]:
    """The decoded JSON body of an ``ApiException`` ({} when there is none)."""
    body = getattr(err, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            data = json.loads(body)
        except ValueError:
            return {"message": body}
        return data if isinstance(data, dict) else {}
    return {}


def singular(resource: str) -> str:
    """The word for one object of a resource (``registeredmodels`` → ``registeredmodel``)."""
    return (resource[:-1] if resource.endswith("s") else resource) or "object"


def api_error_message(err: Any, namespace: str | None = None) -> str:
    """One line for an ``ApiException`` (NotFound, Forbidden, Conflict, Invalid, …)."""
    status = getattr(err, "status", None)
    body = api_body(err)
    message = one_line(body.get("message") or getattr(err, "reason", None) or "")
    details = body.get("details") or {}
    if status == 0 or status is None:
        return f"cannot reach the Kubernetes API server: {message or 'connection failed'}"
    if status == 404:
        name = details.get("name")
        if name:
            where = f" in namespace {namespace}" if namespace else ""
            return f"{singular(str(details.get('kind') or ''))} {name} not found{where}"
        return (
            f"the API server does not serve this resource ({message or 'not found'}); "
            f"are the {GROUP} CRDs installed? (modelreg install-crds)"
        )
    if status == 401:
        return f"unauthorized: the API server rejected the credentials ({message or 'Unauthorized'})"
    if status == 403:
        return f"forbidden: {message}"
    if status == 409:
        return f"conflict: {message}"
    if status == 422:
        return f"invalid: {message}"
    if isinstance(status, int) and status >= 500:
        return f"API server error {status}: {message}"
    return f"API error {status}: {message}"


def _connection_reason(reason: Any) -> str:
    text = one_line(str(reason))
    # urllib3 puts the connection object's repr first: "<...HTTPSConnection object at 0x..>: Failed ..."
    text = re.sub(r"<[^>]*object at 0x[0-9a-f]+>:?\s*", "", text)
    text = re.sub(r"\bHTTPS?Connection\([^)]*\):\s*", "", text)
    text = re.sub(r"^\w+Error\((.*)\)$", r"\1", text).strip("'\" ")
    return text or type(reason).__name__


def validation_summary(err: Any) -> str:
    """A pydantic ValidationError on one line."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts)


def error_message(err: BaseException, namespace: str | None = None) -> str:
    """Map any exception of a command to one line (without the ``error:`` prefix)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from pydantic import ValidationError

    from modelreg.kube.credentials import CredentialError

    if isinstance(err, CliError | CredentialError):
        return one_line(str(err))
    if isinstance(err, ApiException):
        return api_error_message(err, namespace)
    if isinstance(err, urllib3.exceptions.MaxRetryError):
        pool = getattr(err, "pool", None)
        where = f" at {pool.scheme}://{pool.host}:{pool.port}" if pool is not None else ""
        return f"cannot reach the Kubernetes API server{where}: {_connection_reason(err.reason)}"
    if isinstance(err, urllib3.exceptions.HTTPError):
        return f"cannot reach the Kubernetes API server: {_connection_reason(err)}"
    if isinstance(err, ConfigException):
        return f"no usable kubeconfig: {one_line(str(err))}"
    if isinstance(err, FileNotFoundError):
        return f"file not found: {err.filename or one_line(str(err))}"
    if isinstance(err, ValidationError):
        return f"invalid input: {validation_summary(err)}"
    if isinstance(err, OSError):
        return one_line(str(err)) or type(err).__name__
    return f"{type(err).__name__}: {one_line(str(err))}"
