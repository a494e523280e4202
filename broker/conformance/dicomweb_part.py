"""The Conformance Statement's web services (PS3.2 Annex N: the resources,
transactions, query parameters, media types and status codes of the Modality Scheduled
and Performed Procedure Step services), read from the routes that serve them, like the
DIMSE part is read from the AE that runs."""

from __future__ import annotations

from fastapi.routing import APIRoute

from broker.config import BrokerConfig
from broker.conformance.document import Document
from broker.mapping.dicomweb import DEFAULT_RETURN
from broker.web.dicomweb import BASE, DICOM_JSON, DICOM_XML, HTTP_STATUS, JSON_PARTS, XML_PARTS, router


def write_web_services(doc: Document, config: BrokerConfig) -> None:
    doc.heading(2, "4.5 Web Services (DICOMweb)")
    if not config.web.enabled:
        doc.text("Not offered in this configuration (`web.enabled` is false).")
        return
    scheme = "https" if config.web.model_dump().get("tls") else "http"
    doc.text(
        f"Base URL `{scheme}://{config.web.host}:{config.web.port}{BASE}`. The same store and rules as the DIMSE "
        "services: a search is the C-FIND identifier a modality would send (matching as in 4.2.1.5), a Create or "
        "Update is an N-CREATE or N-SET (PS3.4 F.7), a Retrieve an N-GET (F.8)."
    )
    doc.table(["Method", "Resource", "Transaction"], _routes())
    doc.heading(3, "4.5.1 Search Query Parameters")
    doc.table(
        ["Parameter", "Support"],
        [
            ["{attributeID}={value}", "keyword or tag, dotted through sequences; the DIMSE matching keys"],
            ["includefield", "keywords, tags, dotted paths, or `all`"],
            ["fuzzymatching", "true: case-insensitive Person Name matching"],
            ["offset, limit", "paged in the order the steps were created; limit at most dicom.max_worklist_matches"],
        ],
    )
    doc.text("Returned without includefield: " + ", ".join(f"`{k}`" for k in DEFAULT_RETURN) + ".")
    doc.heading(3, "4.5.2 Media Types and Status Codes")
    doc.bullets(
        [
            f"`{DICOM_JSON}` (default; UTF-8), `{DICOM_XML}` (PS3.19 Native DICOM Model), `{JSON_PARTS}` (each part "
            f"an array of one dataset) and `{XML_PARTS}`, by the Accept header's q-values. A Native DICOM Model "
            f"document holds one dataset, so a search asked for bare `{DICOM_XML}` is answered as `{XML_PARTS}`; a "
            "Retrieve gets the one document. Other media types or character sets: 406.",
            "Search answers 200 with the matches, 204 No Content when there are none (PS3.18 table 14.4.3-1, "
            "8.3.4.4.1), 400 for a malformed value, 503 while the store is unavailable; a Warning header names "
            "unsupported parameters and says when more results can be requested (offset, limit).",
            "Create answers 201 Created with a Location header, as PS3.18 table 15.4.3-1 says (the Annex B example "
            "shows 200; the normative table is followed). Update answers 200; an update of attributes PS3.4 table "
            "F.7.2-1 allows at creation only answers 409 (table 15.5.3-1, Note). Retrieve takes `includefield` "
            "(keywords or tags, or `all`).",
            "Served as Annex B writes them as well: the search resource with a trailing slash (B.36), and Update as "
            "`POST …/{mppsUID}/update` (B.38, B.39) beside 15.5.1's `?update`.",
            "A refusal carries the DICOM Status, Error ID and Error Comment as a DICOM JSON status payload and in "
            "a `Warning: 299` header; unsupported search parameters are named in a Warning header and ignored.",
        ]
    )
    rows = [[f"0x{status:04X}", str(code)] for status, code in sorted(HTTP_STATUS.items())]
    doc.table(["DICOM status", "HTTP status"], [*rows, ["0x0105 on Update", "409"], ["store unavailable", "503"]])


def _routes() -> list[list[str]]:
    return [
        [method, route.path.removeprefix(BASE), (route.endpoint.__doc__ or "").split("(")[0].strip()]
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods or ())
    ]
