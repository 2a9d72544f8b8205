"""The CLI's HTTP client for the lockgate management API.

Reads ``LOCKGATE_URL`` and ``LOCKGATE_TOKEN`` (or ``--url`` / ``--token``), sends the token
as ``Authorization: Bearer``, marks every request ``X-Lockgate-Source: cli`` with a fresh
``X-Request-ID``, and turns every failure into a :class:`CliError` whose exit code comes
from the one table in :mod:`lockgate.cli.errors`.
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from lockgate.cli.errors import (
    EXIT_FAILURE,
    EXIT_NOT_ALLOWED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    exit_code_for_status,
)
from lockgate.cli.extras import require

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_URL",
    "PAGE_SIZE",
    "TIMEOUT_SECONDS",
    "TOKEN_ENV",
    "URL_ENV",
    "Answer",
    "ApiClient",
    "Params",
    "add_connection_options",
    "api_path",
    "client_for",
]

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = 10.0
PAGE_SIZE = 500
"""Items asked for per page when a command follows ``next_cursor`` through a whole list."""
URL_ENV = "LOCKGATE_URL"
TOKEN_ENV = "LOCKGATE_TOKEN"  # noqa: S105 - the variable's name, not a secret

Params = Mapping[str, str | int | bool | None]


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful response: its JSON body and the version from its ETag, if any."""

    body: Any
    etag: int | None
    status: int = 200

    @property
    def proposed(self) -> bool:
        """The write became a change request (``202``): nothing was applied yet."""
        return self.status == 202

    @property
    def version(self) -> int:
        """The version of the object read: its ETag, else the body's ``version``."""
        if self.etag is not None:
            return self.etag
        version = self.body.get("version") if isinstance(self.body, dict) else None
        if not isinstance(version, int):
            raise CliError("the server's answer carries no version", EXIT_FAILURE)
        return version


def api_path(*segments: str) -> str:
    """``/api/v1/<segment>/…`` with every segment percent-encoded."""
    return "/api/v1/" + "/".join(quote(segment, safe="") for segment in segments)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", metavar="URL", help=f"lockgate server URL [{URL_ENV}, default {DEFAULT_URL}]"
    )
    parser.add_argument("--token", metavar="TOKEN", help=f"API token [{TOKEN_ENV}]")


def server_url(args: argparse.Namespace) -> str:
    """The server named by ``--url`` or the environment."""
    return str(args.url or os.environ.get(URL_ENV) or DEFAULT_URL)


def client_for(args: argparse.Namespace) -> ApiClient:
    """A client for the server named by ``--url``/``--token`` or the environment."""
    token = args.token or os.environ.get(TOKEN_ENV) or ""
    return ApiClient(server_url(args), token)


class ApiClient:
    """A synchronous client; use it as a context manager so its connections close."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        require("cli", "httpx")
        import httpx

        self.url = url.rstrip("/")
        self.has_token = bool(token)
        headers = {"X-Lockgate-Source": "cli", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self._http = httpx.Client(
                base_url=self.url, headers=headers, timeout=timeout, transport=transport
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise CliError(f"invalid lockgate URL {url!r}: {exc}", EXIT_USAGE) from None

    @property
    def headers(self) -> Any:
        """The headers sent with every request (mutable: ``lockgate mcp`` marks its own)."""
        return self._http.headers

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Params | None = None) -> Answer:
        return self.request("GET", path, params=params)

    def post(
        self, path: str, body: Any, *, version: int | None = None, params: Params | None = None
    ) -> Answer:
        return self.request("POST", path, body=body, version=version, params=params)

    def put(
        self, path: str, body: Any, *, version: int | None = None, params: Params | None = None
    ) -> Answer:
        return self.request("PUT", path, body=body, version=version, params=params)

    def patch(
        self, path: str, body: Any, *, version: int | None = None, params: Params | None = None
    ) -> Answer:
        return self.request("PATCH", path, body=body, version=version, params=params)

    def delete(
        self,
        path: str,
        params: Params | None = None,
        *,
        version: int | None = None,
        reason: str = "",
    ) -> Answer:
        """DELETE; a DELETE has no body, so its reason travels in ``X-Lockgate-Reason``."""
        headers = {"X-Lockgate-Reason": reason} if reason else None
        return self.request("DELETE", path, params=params, version=version, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Params | None = None,
        version: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; any failure becomes a :class:`CliError`."""
        sent = {"X-Request-ID": uuid.uuid4().hex, **(headers or {})}
        if version is not None:
            sent["If-Match"] = f'"{version}"'
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        import httpx

        try:
            response = self._http.request(method, path, json=body, params=query, headers=sent)
        except httpx.TimeoutException:
            raise self._unreachable("no answer in time (timeout)") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise CliError(f"invalid lockgate URL {self.url!r}: {exc}", EXIT_USAGE) from None
        except httpx.TransportError as exc:
            raise self._unreachable(_transport_reason(exc)) from None
        if response.is_success:
            return Answer(_json_body(response), _etag_version(response), response.status_code)
        raise self._failure(response)

    def stream_text(
        self,
        method: str,
        path: str,
        out: Callable[[str], Any],
        *,
        body: Any = None,
        params: Params | None = None,
    ) -> None:
        """Send one request and pass its text body to ``out`` as it arrives (JSON lines
        exports: memory does not grow with the answer); failures become :class:`CliError`."""
        sent = {"X-Request-ID": uuid.uuid4().hex, "Accept": "application/x-ndjson"}
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        import httpx

        try:
            with self._http.stream(method, path, json=body, params=query, headers=sent) as response:
                if not response.is_success:
                    response.read()
                    raise self._failure(response)
                for chunk in response.iter_text():
                    out(chunk)
        except httpx.TimeoutException:
            raise self._unreachable("no answer in time (timeout)") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise CliError(f"invalid lockgate URL {self.url!r}: {exc}", EXIT_USAGE) from None
        except httpx.TransportError as exc:
            raise self._unreachable(_transport_reason(exc)) from None

    def paged(self, path: str, params: Params | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paged list, following ``next_cursor``."""
        query: dict[str, str | int | bool | None] = {"limit": PAGE_SIZE, **(params or {})}
        while True:
            page = self.get(path, query).body
            yield from page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return
            query["cursor"] = cursor

    def _unreachable(self, why: str) -> CliError:
        return CliError(
            f"cannot reach lockgate at {self.url}: {why} (set {URL_ENV} or --url)",
            EXIT_UNREACHABLE,
        )

    def _failure(self, response: httpx.Response) -> CliError:
        code = exit_code_for_status(response.status_code)
        problem = _problem(response)
        if problem is None:
            summary = response.text.strip().splitlines()[:1] or [response.reason_phrase]
            request_id = response.request.headers.get("X-Request-ID", "-")
            message = f"HTTP {response.status_code} from {self.url}: {summary[0][:200]}"
            return CliError(f"{message} (request id {request_id})", code)
        lines = [str(problem.get("detail") or problem.get("title") or response.reason_phrase)]
        lines += [_field_line(e) for e in problem.get("errors") or [] if isinstance(e, dict)]
        login = response.request.url.path.endswith("/auth/login")
        if (
            code == EXIT_NOT_ALLOWED
            and not self.has_token
            and response.status_code == 401
            and not login
        ):
            lines.append(f"  (no API token: set {TOKEN_ENV} or pass --token)")
        return CliError("\n".join(lines), code)


def _param(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _transport_reason(exc: httpx.TransportError) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        return "connection refused" if "refused" in text else f"cannot connect ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _json_body(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise CliError(
            f"unexpected answer from {response.request.url}: not JSON", EXIT_FAILURE
        ) from None


def _etag_version(response: httpx.Response) -> int | None:
    text = response.headers.get("ETag", "").removeprefix("W/").strip('"')
    return int(text) if text.isdigit() else None


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _field_line(error: dict[str, Any]) -> str:
    return f"  {error.get('field', '?')}: {error.get('message', 'invalid')}"
