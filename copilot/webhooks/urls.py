"""The webhook allow-list: which URLs a subscription may name, compared by their parsed parts.

An entry of ``COPILOT_WEBHOOK_URLS`` is a URL prefix such as ``https://hooks.example.org/copilot/``. A URL
matches it when its scheme, lower-cased host and port (80 and 443 filled in) are the entry's and its path
lies under the entry's path on a ``/`` boundary. Nothing is compared as a plain string, so
``http://127.0.0.1:9000.evil.com/`` (no valid port) and ``http://127.0.0.1:9000@evil.com/`` (a user name,
refused) never pass for ``http://127.0.0.1:9000/``. URLs whose meaning a receiver might read differently
(dot segments, encoded dots or slashes, backslashes, non-ASCII or blank characters) are refused outright.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
_AMBIGUOUS_PATH = re.compile(r"%2e|%2f|%5c|\\", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """A URL reduced to what decides where it goes."""

    scheme: str
    host: str
    port: int
    path: str

    def covers(self, url: Target) -> bool:
        """Whether ``url`` lies under this prefix: same origin, and its path at or below this path."""
        if (url.scheme, url.host, url.port) != (self.scheme, self.host, self.port):
            return False
        folder = self.path.rstrip("/")
        return url.path == folder or url.path.startswith(folder + "/")


def parse_url(text: str, prefix: bool = False) -> Target:
    """The parts of an ``http(s)`` URL; ``ValueError`` says what is wrong with it. A ``prefix`` (an
    allow-list entry) may not carry a query either."""
    if not text.isascii() or any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("it holds blanks, control or non-ASCII characters (write a host name in its xn-- form)")
    parts = urlsplit(text)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError("it is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("it names a user (user@host); put no credentials in the URL")
    if not parts.hostname:
        raise ValueError("it names no host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("its port is not a number from 1 to 65535")
    if "#" in text:
        raise ValueError("it has a #fragment")
    if prefix and "?" in text:
        raise ValueError("it has a ?query; an entry is a prefix of the path")
    path = parts.path or "/"
    if _AMBIGUOUS_PATH.search(path) or any(segment in {".", ".."} for segment in path.split("/")):
        raise ValueError("its path has . or .. segments, encoded dots or slashes, or backslashes")
    host = parts.hostname.rstrip(".")
    return Target(parts.scheme, host, port or DEFAULT_PORTS[parts.scheme], path)


def parse_allow_list(text: str) -> list[Target]:
    """The comma-separated prefixes of ``COPILOT_WEBHOOK_URLS``; ``ValueError`` names the first bad entry."""
    targets = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            targets.append(parse_url(entry, prefix=True))
        except ValueError as exc:
            raise ValueError(
                f"the entry {entry!r} is not a URL prefix such as https://hooks.example.org/copilot/: {exc}"
            ) from None
    return targets


def allowed(url: str, prefixes: Sequence[Target]) -> bool:
    """Whether ``url`` is a valid URL under one of ``prefixes``."""
    try:
        target = parse_url(url)
    except ValueError:
        return False
    return any(prefix.covers(target) for prefix in prefixes)
