"""The web side of the tests: a broker with its API on a free port, two tokens, and
an HTTP client with one of them."""

from __future__ import annotations

from typing import Any

import httpx

READ_TOKEN = "read-token-for-tests-0001"
ADMIN_TOKEN = "admin-token-for-tests-0001"


def web_section(**overrides: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "host": "127.0.0.1",
        "port": 0,
        "max_body_bytes": 4096,
        "tokens": [
            {"name": "viewer", "role": "read", "token": READ_TOKEN},
            {"name": "operator", "role": "admin", "token": ADMIN_TOKEN},
        ],
        **overrides,
    }


def client(port: int, token: str | None = READ_TOKEN, *, cookie: str = "") -> httpx.Client:
    """With `token` as the bearer header, or (`cookie`) as the page's sign-in cookie."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    cookies = {"broker_token": cookie} if cookie else {}
    url = f"http://127.0.0.1:{port}"
    return httpx.Client(base_url=url, headers=headers, cookies=cookies, timeout=10, follow_redirects=False)
