"""The DICOMweb worklist search (PS3.18 14.4) as a client times it: the C-FIND query of
part A turned into query parameters, one kept-alive HTTP connection, the answer read
whole (JSON parsed, as a client would; XML parts counted; a 204 is no match)."""

from __future__ import annotations

import json
import time

import httpx
from pydicom.dataset import Dataset

from bench.dicom_client import FindResult

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
