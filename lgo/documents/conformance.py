"""Check a CDA document against the ANS CI-SIS conformance kit: the normative schema
(``CDA_extended.xsd``) and the schematron of its volet.

The kit is external material (the public ``TestContenuCDA`` repository of the ANS), never shipped
with lgo: the setting ``documents.cisis_kit_dir`` points to a copy of it (its ``infrastructure``,
``schematrons``, ``jeuxDeValeurs`` folders). Without it lgo validates against its own schema subset
only (``lgo/documents/schema``).

The schematrons use XPath 2 (``queryBinding="xslt2"``): lxml cannot run them, Saxon-HE
(``saxonche``) does. Each ``.sch`` is compiled once (ISO skeleton: include → abstract expand →
SVRL XSLT, about 0.2 s) into a writable cache that keeps the kit's layout (the compiled XSLT reads
the value sets at ``../jeuxDeValeurs/…`` relative to itself, so the cache holds a link to the kit's
``jeuxDeValeurs``); the kit itself may be read-only. A document then takes about 10 ms.

The "structuration minimale" schematron is not run: as distributed it names a value set the kit
lacks and stops; the volet schematrons carry the same header rules.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lxml import etree

from lgo.core.safe_xml import parse_xml
from lgo.documents.errors import CdaNonConformantError, CisisKitUnusable
from lgo.documents.models import DocumentKind
from lgo.documents.validate import MAX_CDA_BYTES, schema_errors

SVRL: Final = "http://purl.oclc.org/dsdl/svrl"
SCHEMA_PATH: Final = Path("infrastructure/cda/CDA_extended.xsd")
SKELETON: Final = ("iso_dsdl_include.xsl", "iso_abstract_expand.xsl", "iso_svrl_for_xslt2.xsl")
MAX_SVRL_BYTES: Final = 16 * 1024 * 1024

# The volet (schematron file, under ``schematrons/``) each kind of document must follow.
VOLETS: Final[dict[DocumentKind, str]] = {
    DocumentKind.DISPENSING_SUMMARY: "CI-SIS_eDISP-MED_2024.01.sch",
    DocumentKind.VACCINATION_NOTE: "CI-SIS_VAC-NOTE_2023.01.sch",
    DocumentKind.TROD_RESULT: "CI-SIS_BIO-TROD_2024.01.sch",
}


class KitUnavailable(Exception):
    """The kit folder is not a CI-SIS kit, or Saxon-HE (``saxonche``) is not installed."""


@dataclass(frozen=True)
class FailedRule:
    """One failed assert: the rule's French text (it starts with the rule id, ``[Entete_…]``)."""

    text: str
    location: str

    def __str__(self) -> str:
        return self.text


def kit_problem(kit_dir: Path) -> str | None:
    """Why ``kit_dir`` cannot be used (French), or None when it can."""
    if not (kit_dir / SCHEMA_PATH).is_file():
        return f"schéma CDA_extended.xsd absent de {kit_dir}"
    missing = [name for name in VOLETS.values() if not (kit_dir / "schematrons" / name).is_file()]
    if missing:
        return f"schématron(s) absent(s) du kit : {', '.join(missing)}"
    if importlib.util.find_spec("saxonche") is None:
        return "Saxon-HE (paquet Python saxonche) n'est pas installé"
    return None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lgo" / "cisis"


class CisisKit:
    """The kit at ``kit_dir``: schema validation and schematron runs (thread-safe, one lock:
    a compiled Saxon stylesheet is not thread-safe and runs take milliseconds)."""

    def __init__(self, kit_dir: Path, cache_dir: Path | None = None) -> None:
        problem = kit_problem(kit_dir)
        if problem:
            raise KitUnavailable(problem)
        self.kit_dir = kit_dir.resolve()
        # one cache folder per kit location: two kits never share compiled schematrons
        digest = hashlib.sha256(str(self.kit_dir).encode()).hexdigest()[:12]
        self.cache_dir = (cache_dir or default_cache_dir()) / digest
        self._lock = threading.Lock()
        self._processor: Any = None
        self._compiled: dict[str, Any] = {}
        self._schema: etree.XMLSchema | None = None

    def warm(self) -> None:
        """Load the schema and compile every volet now (daemon start), not on the first document."""
        with self._lock:
            self._load_schema()
            for schematron in VOLETS.values():
                self._executable(schematron)

    # --- schema -----------------------------------------------------------------------------

    def schema_errors(self, xml: bytes) -> list[str]:
        """Violations of the normative ``CDA_extended.xsd`` (line and libxml2 error type only:
        the messages quote values, which may be identities)."""
        root = parse_xml(xml, max_bytes=MAX_CDA_BYTES)
        with self._lock:
            schema = self._load_schema()
            if schema.validate(root):
                return []
            log: list[Any] = list(schema.error_log)  # type: ignore[call-overload]
        return [f"{entry.line}: {entry.type_name}" for entry in log]

    def _load_schema(self) -> etree.XMLSchema:
        if self._schema is None:
            # The kit's own files (read from disk, network off): imports resolve relatively.
            parser = etree.XMLParser(no_network=True, resolve_entities=False)
            self._schema = etree.XMLSchema(etree.parse(str(self.kit_dir / SCHEMA_PATH), parser))
        return self._schema

    # --- schematron -------------------------------------------------------------------------

    def failed_asserts(self, schematron: str, xml: bytes) -> list[FailedRule]:
        """The failed asserts of ``schematron`` (a file name under ``schematrons/``) on ``xml``.

        ``xml`` must already have been parsed by lgo's hardened parser (no DOCTYPE, no entity).
        """
        parse_xml(xml, max_bytes=MAX_CDA_BYTES)  # refuses a DOCTYPE before Saxon sees it
        with self._lock:
            executable = self._executable(schematron)
            node = self._saxon().parse_xml(xml_text=xml.decode("utf-8"), encoding="UTF-8")
            report = executable.transform_to_string(xdm_node=node)
        return _failed(report.encode("utf-8"))

    def _saxon(self) -> Any:
        if self._processor is None:
            # imported here: saxonche (a GraalVM native image) is loaded only with a kit set
            saxonche = importlib.import_module("saxonche")
            self._processor = saxonche.PySaxonProcessor(license=False)
        return self._processor

    def _executable(self, schematron: str) -> Any:
        executable = self._compiled.get(schematron)
        if executable is None:
            compiled = self._compile(schematron)
            xslt = self._saxon().new_xslt30_processor()
            executable = xslt.compile_stylesheet(stylesheet_file=str(compiled))
            self._compiled[schematron] = executable
        return executable

    def _compile(self, schematron: str) -> Path:
        """The SVRL XSLT of ``schematron`` in the cache, compiled when absent or older."""
        source = self.kit_dir / "schematrons" / schematron
        target = self.cache_dir / "schematrons" / (Path(schematron).stem + ".xsl")
        if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        values = self.cache_dir / "jeuxDeValeurs"
        if not values.exists():
            values.symlink_to(self.kit_dir / "jeuxDeValeurs", target_is_directory=True)
        xslt = self._saxon().new_xslt30_processor()
        skeleton = self.kit_dir / "schematrons"
        first = xslt.compile_stylesheet(stylesheet_file=str(skeleton / SKELETON[0]))
        text: str = first.transform_to_string(source_file=str(source))
        for step in SKELETON[1:]:
            executable = xslt.compile_stylesheet(stylesheet_file=str(skeleton / step))
            text = executable.transform_to_string(xdm_node=self._saxon().parse_xml(xml_text=text))
        # write then rename: a concurrent process never reads half a stylesheet
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
        return target


def _failed(report: bytes) -> list[FailedRule]:
    root = parse_xml(report, max_bytes=MAX_SVRL_BYTES)
    failed = []
    for element in root.iter(f"{{{SVRL}}}failed-assert"):
        text = " ".join("".join(str(t) for t in element.itertext()).split())
        failed.append(FailedRule(text=text, location=element.get("location", "")))
    return failed


_LEADING_BRACKETS: Final = re.compile(r"(?:\s*\[+[^\[\]]*\]+)+")
_BRACKET: Final = re.compile(r"\[+([^\[\]]*)\]")


def rule_id(message: str) -> str:
    """The id of a failed rule (``Entete_VAC-NOTE`` …) from its message, without the text: what
    may go into an event or a log (a rule text can quote a coded value of the document)."""
    # "[Entete_VAC-NOTE] …", "[1] [S_dispensationMedicaments.sch] …": the first named bracket
    # of the leading ones (later brackets may quote the document's values)
    leading = _LEADING_BRACKETS.match(message)
    names: list[str] = _BRACKET.findall(leading.group(0) if leading else "")
    for name in names:
        if not name.isdigit():
            return name.removesuffix(".sch")
    return "schéma CDA" if message.startswith("Schéma CDA") else "règle"


@dataclass(frozen=True)
class ConformanceReport:
    """What a check found: schema violations (lgo's schema, and the kit's when configured) and
    the failed asserts of the volet schematron (kit only)."""

    kind: DocumentKind
    schema_errors: tuple[str, ...]
    failed: tuple[FailedRule, ...]
    kit_checked: bool

    @property
    def ok(self) -> bool:
        return not self.schema_errors and not self.failed

    def messages(self, limit: int = 20) -> list[str]:
        """French lines for the counter: the failed rules first, then schema violations."""
        lines = [rule.text for rule in self.failed]
        lines += [f"Schéma CDA, ligne {error}" for error in self.schema_errors]
        return lines[:limit]


class DocumentChecker:
    """Validation before sending: the schema always, the volet schematron when a kit is set.

    ``kit_problem`` says why a configured kit cannot be used: then nothing is sent
    (:class:`CisisKitUnusable`) rather than sent unchecked.
    """

    def __init__(self, kit: CisisKit | None = None, kit_problem: str | None = None) -> None:
        self.kit = kit
        self.kit_problem = kit_problem

    @classmethod
    def configured(cls, kit_dir: Path | None, cache_dir: Path) -> DocumentChecker:
        """The checker of the settings: lgo's schema only without a kit."""
        if kit_dir is None:
            return cls()
        try:
            return cls(CisisKit(kit_dir, cache_dir))
        except KitUnavailable as exc:
            return cls(kit_problem=str(exc))

    def describe(self) -> str:
        """One French line for ``lgo doctor``."""
        if self.kit is not None:
            return f"kit CI-SIS configuré ({self.kit.kit_dir}) : schéma normatif et schématrons"
        if self.kit_problem:
            return f"kit CI-SIS configuré mais inutilisable : {self.kit_problem}"
        return "kit CI-SIS non configuré : schéma de lgo seulement (documents.cisis_kit_dir)"

    def check(self, kind: DocumentKind, xml: bytes) -> ConformanceReport:
        errors = schema_errors(xml)
        failed: list[FailedRule] = []
        if self.kit is not None:
            errors += [f"{e} (CDA_extended.xsd)" for e in self.kit.schema_errors(xml)]
            failed = self.kit.failed_asserts(VOLETS[kind], xml)
        return ConformanceReport(kind, tuple(errors), tuple(failed), self.kit is not None)

    def require(self, kind: DocumentKind, xml: bytes) -> ConformanceReport:
        """The report of a conformant document, or :class:`CdaNonConformantError` listing the
        failed rules in French."""
        if self.kit_problem:
            raise CisisKitUnusable(self.kit_problem)
        report = self.check(kind, xml)
        if not report.ok:
            raise CdaNonConformantError(
                volet=VOLETS[kind].removeprefix("CI-SIS_").removesuffix(".sch"),
                failed_rules=report.messages(),
                failed_count=len(report.failed) + len(report.schema_errors),
            )
        return report
