"""Bounded, polite HTTP for the live Hub reader: one JSON page per call, never a hang or a leak.

Every request goes through :meth:`HubClient.get_page`, which

- paces requests client-side (``rate`` requests per second, every attempt and redirect counted);
- bounds each attempt: a connect timeout, a read timeout per socket read, a deadline for the whole
  answer and a size cap on the (decompressed) body;
- retries HTTP 408, 429 and 5xx, timeouts and dropped connections at most ``max_retries`` times with
  exponential back-off (``base_wait`` doubling up to ``max_wait``), waiting what the server asks
  (``Retry-After`` in seconds or as an HTTP date, or the ``RateLimit`` header's reset time) when it
  asks for at most ``max_wait``; a longer wish ends the crawl at once with a message saying how long;
- fails at once when the host name does not resolve (a temporary DNS failure is retried);
- sends the Hub token only to the configured endpoint's origin (scheme, host and port), also on
  redirects and on ``Link`` URLs that point elsewhere.

Every failure is a :class:`modelatlas.errors.HubError`: one line naming the URL. The decisions are
listed in docs/reliability.md ("The live Hub reader") and docs/ingest.md.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import socket
import time
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from modelatlas.errors import HubError, InputError

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
#: ``RateLimit: "api";r=0;t=55`` (IETF draft ratelimit headers, as the Hub sends them): t = seconds to reset.
_RATELIMIT_RESET = re.compile(r";\s*t\s*=\s*(\d+)")
_MAY_BE_ZERO = ("max_retries", "max_redirects", "base_wait")


@dataclass(frozen=True)
class HubOptions:
    """Limits of a Hub crawl (docs/ingest.md, "The live Hub"; defaults there too).

    Parameters
    ----------
    rate:
        Requests per second at most, every attempt counted (1.0: 300 per 5 minutes, inside the
        Hub's smallest per-5-minute API quota).
    connect_timeout, read_timeout:
        Seconds to open a connection; seconds to wait for each piece of an answer.
    page_deadline:
        Seconds for one whole answer, body included (a server that drips bytes cannot hold a crawl).
    max_retries:
        Further attempts after the first, per page.
    base_wait, max_wait:
        First back-off wait, doubling per retry up to ``max_wait``; a server asking (``Retry-After``)
        for more than ``max_wait`` seconds ends the crawl with that wait in the message.
    max_page_bytes:
        Largest answer body accepted (after decompression).
    max_pages:
        Page budget of the whole crawl, resumed runs included.
    max_redirects:
        Redirects followed per request.
    """

    rate: float = 1.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    page_deadline: float = 300.0
    max_retries: int = 6
    base_wait: float = 1.0
    max_wait: float = 60.0
    max_page_bytes: int = 256 * 2**20
    max_pages: int = 10_000
    max_redirects: int = 5

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            ok = ok and (value >= 0 if f.name in _MAY_BE_ZERO else value > 0)
            ok = ok and (isinstance(value, int) or f.type != "int")
            if not ok:
                what = "non-negative" if f.name in _MAY_BE_ZERO else "positive"
                raise InputError(f"{f.name} must be a {what} {'whole' if f.type == 'int' else 'finite'} number, "
                                 f"not {value!r}", where="Hub options")


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of a URL, the port filled in for http / https (RFC 6454 origin)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number
        port = -1
    return scheme, (parts.hostname or "").lower(), port if port is not None else DEFAULT_PORTS.get(scheme)


def shown(url: str) -> str:
    """The URL for messages: the ``expand`` list (the same 17 fields on every page) left out."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k != "expand"]
    text = urlunsplit(parts._replace(query=urlencode(kept)))
    return text + (" (expand=…)" if len(kept) < len(query) else "")


def _http_date(text: str) -> datetime | None:
    """An HTTP date (RFC 9110 section 5.6.7) as an aware datetime, or ``None``."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds the server asks to wait: ``Retry-After`` (seconds or HTTP date), else ``RateLimit``'s reset.

    ``now`` is the reference time for a date (default: the answer's ``Date`` header, else the clock,
    so a skewed local clock does not stretch the wait). ``None`` when the server says nothing usable.
    """
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    when = _http_date(value) if value else None
    if when is not None:
        if now is None:
            date = _http_date(headers.get("date", ""))
            now = (date or datetime.now(timezone.utc)).timestamp()
        return max(when.timestamp() - now, 0.0)
    match = _RATELIMIT_RESET.search(headers.get("ratelimit", ""))
    return float(match.group(1)) if match else None


def _dns_failure(exc: BaseException) -> socket.gaierror | None:
    """The permanent name-resolution error behind a connection error, if that is what it is."""
    seen = 0
    while exc is not None and seen < 10:  # bounded walk of the cause chain
        if isinstance(exc, socket.gaierror):
            return exc if exc.errno != socket.EAI_AGAIN else None
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min"


class _Retry(Exception):
    """One attempt failed in a way worth another try; ``wait`` is the server's wish, if any."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason, self.wait = reason, wait


@dataclass
class Page:
    """One answer: the decoded JSON body, the next page's URL (``Link: <…>; rel="next"``), the URL
    answered and the server's clock (its ``Date`` header; ``None`` without one)."""

    body: object
    next_url: str | None
    url: str
    server_time: datetime | None = None


class HubClient:
    """GET JSON pages from a Hub endpoint within :class:`HubOptions` (see module docstring).

    Parameters
    ----------
    endpoint:
        The configured Hub URL; its origin alone receives the token.
    options:
        Timeouts, pacing, retries and size limits.
    headers:
        Request headers (``huggingface_hub.utils.build_hf_headers()``: user agent and, when logged
        in, ``authorization``). The ``authorization`` header is sent to ``endpoint``'s origin only.
    """

    def __init__(self, endpoint: str, options: HubOptions, headers: dict[str, str] | None = None):
        self.options = options
        self.origin = origin(endpoint)
        headers = dict(headers or {})
        self._auth = {k: headers.pop(k) for k in list(headers) if k.lower() == "authorization"}
        self._headers = headers
        self._last_request: float | None = None
        o = options
        self._http = httpx.Client(follow_redirects=False, timeout=httpx.Timeout(
            connect=o.connect_timeout, read=o.read_timeout, write=o.read_timeout, pool=o.connect_timeout))

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def headers_for(self, url: str) -> dict[str, str]:
        """Headers of a request to ``url``: the token only when ``url`` has the endpoint's origin."""
        return {**self._headers, **self._auth} if origin(url) == self.origin else dict(self._headers)

    def _pace(self) -> None:
        if self._last_request is not None:
            wait = self._last_request + 1.0 / self.options.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last_request = time.monotonic()

    def get_page(self, url: str) -> Page:
        """The JSON answer at ``url`` and its next-page link, retried within the limits.

        Raises
        ------
        HubError
            The server refused, never answered within the retries, asked to wait too long, sent
            something that is not JSON or too large, or the host does not resolve.
        """
        o = self.options
        wait = o.base_wait
        for attempt in range(o.max_retries + 1):
            try:
                return self._attempt(url)
            except _Retry as failed:
                if failed.wait is not None and failed.wait > o.max_wait:
                    raise HubError(f"the server asks to wait {_duration(failed.wait)} before the next request "
                                   f"({failed.reason}), longer than the {o.max_wait:g} s allowed; "
                                   f"run again later", path=shown(url)) from None
                if attempt == o.max_retries:
                    raise HubError(f"{failed.reason}; gave up after {o.max_retries + 1} attempts",
                                   path=shown(url)) from None
                time.sleep(failed.wait if failed.wait is not None else wait)
                wait = min(wait * 2, o.max_wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _attempt(self, url: str) -> Page:
        o = self.options
        for _ in range(o.max_redirects + 1):
            if urlsplit(url).scheme.lower() not in DEFAULT_PORTS:
                raise HubError("only http and https URLs are fetched", path=url)
            self._pace()
            try:
                request = self._http.build_request("GET", url, headers=self.headers_for(url))
                response = self._http.send(request, stream=True)
            except httpx.TimeoutException as exc:
                kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
                limit = o.connect_timeout if kind == "connect" else o.read_timeout
                raise _Retry(f"no answer within the {kind} timeout of {limit:g} s") from None
            except httpx.TransportError as exc:
                dns = _dns_failure(exc)
                if dns is not None:
                    raise HubError(f"cannot resolve host {urlsplit(url).hostname!r} ({dns.strerror}); "
                                   f"check HF_ENDPOINT and the network", path=shown(url)) from None
                raise _Retry(f"connection failed ({type(exc).__name__}: {exc})") from None
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # a URL httpx cannot send, a protocol misuse
                raise HubError(f"cannot request it ({type(exc).__name__}: {exc})", path=shown(url)) from None
            try:
                if response.status_code in REDIRECT_STATUS and "location" in response.headers:
                    url = str(response.url.join(response.headers["location"]))
                    continue
                body = self._read_body(response, url)
                if response.status_code in RETRY_STATUS:
                    wait = retry_after(response.headers)
                    said = f", Retry-After {response.headers['retry-after']!r}" if "retry-after" in response.headers \
                        else ""
                    raise _Retry(f"HTTP {response.status_code}{said}", wait)
                if response.status_code != 200:
                    hint = " (is HF_TOKEN valid?)" if response.status_code in (401, 403) else ""
                    raise HubError(f"HTTP {response.status_code}{hint}: {_detail(body)}", path=shown(url))
            finally:
                response.close()
            try:
                data = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise HubError(f"the answer is not JSON ({exc}); starts with {body[:80]!r}", path=shown(url)) \
                    from None
            link = response.links.get("next", {}).get("url")
            try:
                nxt = str(response.url.join(link)) if link else None
            except httpx.InvalidURL:
                nxt = ""
            if nxt is not None and urlsplit(nxt).scheme.lower() not in DEFAULT_PORTS:
                raise HubError(f"the next-page link {link[:200]!r} is not a usable http(s) URL", path=shown(url))
            return Page(data, nxt, str(response.url), _http_date(response.headers.get("date", "")))
        raise HubError(f"more than {o.max_redirects} redirects", path=shown(url))

    def _read_body(self, response: httpx.Response, url: str) -> bytes:
        """The whole body within the page deadline and size cap."""
        o = self.options
        started, size, chunks = time.monotonic(), 0, []
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > o.max_page_bytes:
                    raise HubError(f"the answer is larger than {o.max_page_bytes:,} bytes", path=shown(url))
                if time.monotonic() - started > o.page_deadline:
                    raise _Retry(f"the answer took longer than the page deadline of {o.page_deadline:g} s")
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise _Retry(f"the answer stalled for more than the read timeout of {o.read_timeout:g} s") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:  # cut off, or its compression broken
            raise _Retry(f"the answer was cut off or its compression is broken ({type(exc).__name__}: {exc})") \
                from None
        return b"".join(chunks)


def _detail(body: bytes) -> str:
    """The server's error text (the Hub answers ``{"error": "..."}``), short."""
    try:
        data = json.loads(body)
        text = data.get("error") if isinstance(data, dict) else None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        text = None
    text = str(text) if text else body[:200].decode("utf-8", "replace")
    return " ".join(text.split())[:200] or "(no message)"
