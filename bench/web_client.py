"""The DICOMweb worklist search (PS3.18 14.4) as a client times it: the C-FIND query of
part A turned into query parameters, one kept-alive HTTP connection, the answer read
whole (JSON parsed, as a client would; XML parts counted; a 204 is no match).

`load` is the scale rows' many clients: raw keep-alive HTTP/1.1 sockets (as
bench/mwl_load.py's associations), so the benchmark's own CPU stays small."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlencode

import httpx
from pydicom.dataset import Dataset

from bench import mwl_load
from bench.dicom_client import FindResult
from bench.mwl_load import LoadResult

SEARCH = "/dicomweb/modality-scheduled-procedure-steps"
JSON, XML = "application/dicom+json", "application/dicom+xml"


def web_params(query: Dataset, prefix: str = "") -> list[tuple[str, str]]:
    """Keys with a value match; empty keys are asked for with includefield."""
    params: list[tuple[str, str]] = []
    for element in query:
        path = prefix + element.keyword
        if element.VR == "SQ" and element.value:
            params += web_params(element.value[0], f"{path}.")
        elif element.keyword == "SpecificCharacterSet":
            continue
        elif element.value not in (None, "", []):
            params.append((path, str(element.value)))
        else:
            params.append(("includefield", path))
    return params


class WebClient:
    def __init__(self, port: int) -> None:
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=3600)

    def search(self, query: Dataset, media: str, *, collect: bool = False) -> FindResult:
        params = web_params(query)
        started = time.perf_counter()
        answer = self._http.get(SEARCH, params=params, headers={"Accept": media})
        if answer.status_code == 204:  # no match (PS3.18 Table 14.4.3-1): no body
            return FindResult(time.perf_counter() - started, 0, 0, [])
        if media == JSON:
            items = json.loads(answer.content)
            seconds = time.perf_counter() - started
            accessions = [str(i.get("00080050", {}).get("Value", [""])[0]) for i in items] if collect else []
            return FindResult(seconds, len(items), 0 if answer.status_code == 200 else answer.status_code, accessions)
        seconds = time.perf_counter() - started
        boundary = answer.headers["content-type"].split("boundary=")[1].encode()
        parts = answer.content.count(b"--" + boundary) - 1
        return FindResult(seconds, parts, 0 if answer.status_code == 200 else answer.status_code, [])

    def close(self) -> None:
        self._http.close()


def load(port: int, query: Dataset, clients: int, seconds: float, timeout: float = 120) -> LoadResult:
    """`clients` keep-alive connections each searching for `query` (JSON) in a loop
    until `seconds` have passed; a search's status is 0 for a 200 or 204, else the
    HTTP status."""
    request = (
        f"GET {SEARCH}?{urlencode(web_params(query))} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {JSON}\r\n\r\n"
    ).encode("ascii")

    def connect(_n: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    return mwl_load.run_clients(clients, seconds, timeout, connect, lambda sock: _search(sock, request))


def _search(sock: socket.socket, request: bytes) -> tuple[int, int]:
    """(items, 0) for an answer; (0, HTTP status) for another status."""
    sock.sendall(request)
    head, body = _read_until(sock, b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        body += chunk
    if status == 204:
        return 0, 0
    if status != 200:
        return 0, status
    return len(json.loads(body[:length])), 0


def _read_until(sock: socket.socket, marker: bytes) -> tuple[bytes, bytes]:
    """What comes before `marker`, and what came after it."""
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    head, _, rest = data.partition(marker)
    return head, rest
