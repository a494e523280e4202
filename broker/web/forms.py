"""The page's own forms: how a signed-in administrator changes things from a browser.

The API's rule stands (broker.web.auth): the sign-in cookie alone never authorizes a
change. A form post needs the cookie of an admin token AND a form token derived from
that cookie with a key only this process knows (HMAC-SHA256): a page of another site
can make a browser send the cookie (it cannot: SameSite=Strict) but can never read
the form token, which only a page of the broker's own origin shows. A post the
browser says comes from another origin (Sec-Fetch-Site, Origin) is refused as well. Forms are plain HTML (no
script), so the Content Security Policy stays without inline script.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import HTTPException, Request, status

from broker.config import WebToken
from broker.domain.audit import Requestor
from broker.web.auth import COOKIE, Tokens
from broker.web.i18n import phrase

FIELD = "form_token"
#: Bodies of the console's forms are small; a bigger one is no form of this page.
_MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True)
class Operator:
    """The administrator a page request comes from, and what the audit calls them."""

    token: WebToken
    form_token: str
    address: str

    @property
    def requestor(self) -> Requestor:
        return Requestor(f"web page {self.token.name}", self.address)


def page_admin(request: Request) -> Operator | None:
    """The signed-in administrator, or None (not signed in, or a read token): a page
    shows its actions only to them."""
    tokens: Tokens = request.app.state.tokens
    presented = request.cookies.get(COOKIE, "")
    found = tokens.token(presented)
    if found is None or found.role != "admin":
        return None
    return Operator(found, _form_token(request, presented), request.client.host if request.client else "")


def require_page_admin(request: Request) -> Operator:
    """The administrator, for a page that shows an action; 403 for anyone else."""
    operator = page_admin(request)
    if operator is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, _refusal(request))
    return operator


async def admin_form(request: Request) -> tuple[Operator, dict[str, str]]:
    """The administrator and the fields of a form they posted; 403 unless the cookie is
    an admin's, the form token is the one derived from it and the origin is ours."""
    if _cross_site(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, phrase(request, "refusal.cross_site"))
    operator = require_page_admin(request)
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, phrase(request, "refusal.too_large"))
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True).items()}
    if not hmac.compare_digest(fields.pop(FIELD, "").encode(), operator.form_token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, phrase(request, "refusal.expired"))
    return operator, fields


def _form_token(request: Request, cookie: str) -> str:
    key: bytes = request.app.state.form_key
    return hmac.new(key, hashlib.sha256(cookie.encode("utf-8", "surrogateescape")).digest(), "sha256").hexdigest()


def _cross_site(request: Request) -> bool:
    """Whether the browser says the post comes from another origin: Fetch Metadata
    (`Sec-Fetch-Site`, sent by current browsers) or an Origin naming another origin.
    Under `Referrer-Policy: no-referrer` browsers send `Origin: null` for the page's own
    forms, so `null` decides nothing; the form token does in any case."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return True
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return origin is not None and origin != "null" and origin != own


def _refusal(request: Request) -> str:
    tokens: Tokens = request.app.state.tokens
    return phrase(request, "refusal.no_tokens" if tokens.open else "refusal.not_admin")
