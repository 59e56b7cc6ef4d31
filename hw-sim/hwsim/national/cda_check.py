"""The DMP simulator's content check: the ANS CI-SIS conformance kit, as the real DMP applies it.

When a kit is configured (``HWSIM_CISIS_KIT_DIR``, or ``POST /_sim/dmp/conformance``), every
provided document is validated against the kit's normative schema (``CDA_extended.xsd``) and the
schematron of its volet, chosen from the XDS ``formatCode``; a document that fails is refused
with an XDS error. The simulator has its own small runner (it never imports lgo): Saxon-HE
(``saxonche``) compiles each ``.sch`` once (ISO skeleton: include, abstract expand, SVRL) into a
cache folder that keeps the kit's layout (value sets at ``../jeuxDeValeurs``), then runs it.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Final

from lxml import etree

SVRL: Final = "http://purl.oclc.org/dsdl/svrl"
SCHEMA: Final = Path("infrastructure/cda/CDA_extended.xsd")
SKELETON: Final = ("iso_dsdl_include.xsl", "iso_abstract_expand.xsl", "iso_svrl_for_xslt2.xsl")
KIT_ENV: Final = "HWSIM_CISIS_KIT_DIR"
Element = etree._Element
# XDS formatCode -> the volet schematron the DMP applies
SCHEMATRONS: Final = {
    "urn:ihe:pharm:dis:2010": "CI-SIS_eDISP-MED_2024.01.sch",
    "urn:asip:ci-sis:vac-note:2021": "CI-SIS_VAC-NOTE_2023.01.sch",
    "urn:ans:ci-sis:trod:2024": "CI-SIS_BIO-TROD_2024.01.sch",
    "urn:asip:ci-sis:vac:2019": "CI-SIS_VAC_2023.01.sch",
}


class KitError(Exception):
    """The kit folder is not usable."""


class CdaChecker:
    """Schema + volet schematron of one kit; thread-safe (one lock around Saxon)."""

    def __init__(self, kit_dir: Path, cache_dir: Path | None = None) -> None:
        if not (kit_dir / SCHEMA).is_file():
            raise KitError(f"no {SCHEMA} in {kit_dir}")
        self.kit_dir = kit_dir.resolve()
        self.cache_dir = cache_dir or Path(tempfile.mkdtemp(prefix="hwsim-cisis-"))
        self._lock = threading.Lock()
        self._saxon: Any = None
        self._compiled: dict[str, Any] = {}
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        self._schema = etree.XMLSchema(etree.parse(str(self.kit_dir / SCHEMA), parser))

    def problems(self, document: Element, format_code: str) -> list[str]:
        """Why ``document`` (a parsed CDA) is not conformant: schema errors (line and type) and
        failed asserts of its volet (the rule's text). Empty when it is."""
        with self._lock:
            found = [
                f"CDA_extended.xsd ligne {e.line} : {e.type_name}"
                for e in self._schema_errors(document)
            ]
            schematron = SCHEMATRONS.get(format_code)
            if schematron is not None:
                found += self._failed_asserts(schematron, etree.tostring(document))
        return found

    def _schema_errors(self, document: Element) -> list[Any]:
        if self._schema.validate(document):
            return []
        errors: list[Any] = list(self._schema.error_log)  # type: ignore[call-overload]
        return errors

    def _processor(self) -> Any:
        if self._saxon is None:
            self._saxon = importlib.import_module("saxonche").PySaxonProcessor(license=False)
        return self._saxon

    def _failed_asserts(self, schematron: str, xml: bytes) -> list[str]:
        executable = self._compiled.get(schematron)
        if executable is None:
            xslt = self._processor().new_xslt30_processor()
            executable = xslt.compile_stylesheet(stylesheet_file=str(self._compile(schematron)))
            self._compiled[schematron] = executable
        node = self._processor().parse_xml(xml_text=xml.decode("utf-8"), encoding="UTF-8")
        report = etree.fromstring(executable.transform_to_string(xdm_node=node).encode("utf-8"))
        return [
            " ".join("".join(str(t) for t in f.itertext()).split())
            for f in report.iter(f"{{{SVRL}}}failed-assert")
        ]

    def _compile(self, schematron: str) -> Path:
        target = self.cache_dir / "schematrons" / (Path(schematron).stem + ".xsl")
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        values = self.cache_dir / "jeuxDeValeurs"
        if not values.exists():
            values.symlink_to(self.kit_dir / "jeuxDeValeurs", target_is_directory=True)
        folder = self.kit_dir / "schematrons"
        xslt = self._processor().new_xslt30_processor()
        first = xslt.compile_stylesheet(stylesheet_file=str(folder / SKELETON[0]))
        text: str = first.transform_to_string(source_file=str(folder / schematron))
        for step in SKELETON[1:]:
            executable = xslt.compile_stylesheet(stylesheet_file=str(folder / step))
            text = executable.transform_to_string(
                xdm_node=self._processor().parse_xml(xml_text=text)
            )
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
        return target


def from_environment() -> CdaChecker | None:
    """The checker of ``HWSIM_CISIS_KIT_DIR`` when set (a wrong folder stops the simulator)."""
    raw = os.environ.get(KIT_ENV)
    return CdaChecker(Path(raw)) if raw else None
