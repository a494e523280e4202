"""Bearer tokens with two roles: `read` may only GET, `admin` may also change things
(requeue, replay, reconcile).

The page's login form puts the token in an HttpOnly, SameSite=Strict cookie. The cookie
counts for GET requests only: a write always needs the Authorization header, which a
page from another site cannot make a browser send, so the cookie cannot be used for
cross-site request forgery. The page's own forms add a token derived from the cookie
(broker.web.forms). With no tokens configured (allowed on loopback only, see
`WebConfig`), everyone who can connect may read and nobody may change anything: an
admin API open by default is how servers of this kind get taken over.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from broker.config import WebToken

COOKIE = "broker_token"
_SAFE_METHODS = frozenset({"GET", "HEAD"})


class Role(enum.IntEnum):
    READ = 1
    ADMIN = 2


class Tokens:
    def __init__(self, tokens: list[WebToken]) -> None:
        self._tokens = [(_digest(t.token.get_secret_value()), t) for t in tokens]

    @property
    def open(self) -> bool:
        return not self._tokens

    def _find(self, presented: str) -> WebToken | None:
        """Compared in constant time against every token, so timing tells nothing (not
        even a token's length: digests of one size are compared)."""
        if not presented:
            return None
        digest = _digest(presented)
        found: WebToken | None = None
        for token, configured in self._tokens:
            if hmac.compare_digest(token, digest):
                found = configured
        return found

    def token(self, presented: str) -> WebToken | None:
        """The configured token presented (its name and role), if any."""
        return self._find(presented)

    def role_of(self, presented: str) -> Role | None:
        found = self._find(presented)
        return Role[found.role.upper()] if found else None

    def calling_ae(self, presented: str) -> str | None:
        """The calling AE title a token acts as ("" when bound to none); None: no such token."""
        found = self._find(presented)
        return found.calling_ae if found else None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


bearer = HTTPBearer(auto_error=False, description="a token from web.tokens in the configuration")


def caller_role(request: Request, bearer: str = "") -> Role | None:
    """The role the request's token grants (header, else the cookie on a GET); None: no valid token."""
    tokens: Tokens = request.app.state.tokens
    if tokens.open:
        return Role.READ
    presented = bearer or (request.cookies.get(COOKIE, "") if request.method in _SAFE_METHODS else "")
    return tokens.role_of(presented)


def role(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Role:
    """The caller's role; 401 without a valid token, 403 when a read token tries a write."""
    found = caller_role(request, credentials.credentials if credentials else "")
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid token is required", {"WWW-Authenticate": "Bearer"})
    if request.method not in _SAFE_METHODS and found < Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, _read_only(request.app.state.tokens))
    return found


def _read_only(tokens: Tokens) -> str:
    if tokens.open:
        return NO_ADMIN_TOKEN
    return "this token may only read"


NO_ADMIN_TOKEN = (
    "the API is read-only: no token is configured. To make changes, add an admin token under "
    "web.tokens in the configuration (name, role: admin, and one of token, token_file, token_env) "
    "and restart the broker"
)


Authorized = Depends(role)
