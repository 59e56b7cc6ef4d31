"""Validate CDA R2 documents against the schema in ``lgo/documents/schema`` (entry ``CDA.xsd``).

The compiled schema is built once and shared behind a lock: ``lxml.etree.XMLSchema`` objects are not
documented as thread-safe, and validation is quick (a few milliseconds per document).
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any, Final

from lxml import etree

from lgo.core.safe_xml import parse_xml
from lgo.documents.errors import CdaInvalidError

SCHEMA_DIR: Final = Path(__file__).parent / "schema"
MAX_CDA_BYTES: Final = 4 * 1024 * 1024
_lock = threading.Lock()


@cache
def _schema() -> etree.XMLSchema:
    # Our own files, read from the package: a plain parser is fine, network still off.
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "CDA.xsd"), parser))


def _violations(root: etree._Element) -> list[str]:
    """Schema violations as ``line: error type`` strings (empty when valid).

    libxml2's messages quote the offending values (names, birth dates, INS): they would reach
    problem+json answers and logs, so only the line and the libxml2 error type are kept.
    """
    with _lock:
        schema = _schema()
        if schema.validate(root):
            return []
        log: list[Any] = list(schema.error_log)  # type: ignore[call-overload]
    return [f"{entry.line}: {entry.type_name}" for entry in log]


def schema_errors(xml: bytes) -> list[str]:
    """Schema violations of ``xml`` (see :func:`_violations`); XML refused by lgo.core.safe_xml raises."""
    return _violations(parse_xml(xml, max_bytes=MAX_CDA_BYTES))


def validated_root(xml: bytes) -> etree._Element:
    """``xml`` parsed once by the hardened parser and valid, or :class:`CdaInvalidError`."""
    root = parse_xml(xml, max_bytes=MAX_CDA_BYTES)
    errors = _violations(root)
    if errors:
        raise CdaInvalidError(violations=errors[:5])
    return root


def validate_cda(xml: bytes) -> None:
    """Raise :class:`CdaInvalidError` (first violations in ``extra``) unless ``xml`` is valid."""
    validated_root(xml)
