"""What a route needs, injected: the settings, the engine, and the owner its bearer token acts for.

Without configured tokens every caller is the owner ``local``. With tokens, a caller sends one as
``Authorization: Bearer <token>`` (a WebSocket may send ``?token=`` instead, since browsers cannot set
headers on it) and acts for the owner ``sha256(token)[:16]``: the token itself is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from copilot.session.engine import Engine
from copilot.settings import Settings

LOCAL_OWNER = "local"
MISSING_TOKEN = "missing bearer token: send the header 'Authorization: Bearer <token>'"
WRONG_TOKEN = "invalid bearer token"

_bearer = HTTPBearer(auto_error=False, description="One of COPILOT_TOKENS; not needed when none are configured.")


def owner_for(token: str | None, tokens: Sequence[str]) -> str | None:
    """The owner ``token`` acts for, or None when tokens are configured and it is missing or wrong."""
    if not tokens:
        return LOCAL_OWNER
    if not token:
        return None
    given = token.encode()
    matched = False
    for known in tokens:  # compare with every token, in constant time, so timing reveals nothing
        matched |= hmac.compare_digest(given, known.encode())
    return hashlib.sha256(given).hexdigest()[:16] if matched else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    scheme, _, token = (authorization or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _settings(conn: HTTPConnection) -> Settings:
    return cast(Settings, conn.app.state.settings)


def _engine(conn: HTTPConnection) -> Engine:
    return cast(Engine, conn.app.state.engine)


def _tokens(conn: HTTPConnection) -> list[str]:
    return cast(list[str], conn.app.state.tokens)


def _owner(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    token = credentials.credentials if credentials else None
    owner = owner_for(token, _tokens(request))
    if owner is None:
        raise HTTPException(401, MISSING_TOKEN if token is None else WRONG_TOKEN, {"WWW-Authenticate": "Bearer"})
    return owner


def websocket_owner(websocket: WebSocket) -> str | None:
    """The owner of a WebSocket connection (header first, then ``?token=``), or None if refused."""
    token = bearer_token(websocket.headers.get("authorization")) or websocket.query_params.get("token")
    return owner_for(token, _tokens(websocket))


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]
OwnerDep = Annotated[str, Depends(_owner)]
