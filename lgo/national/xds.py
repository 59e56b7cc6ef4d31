"""IHE XDS.b vocabulary shared by the DMP client and its tests: namespaces, UUIDs, SOAP envelope.

Values from IHE ITI TF-3 (ebRIM 3.0 metadata). Pure functions over lxml, no I/O.
"""

from __future__ import annotations

import uuid
from typing import Final

from lxml import etree

from lgo.national.profiles import dmp as profile

SOAP: Final = "http://www.w3.org/2003/05/soap-envelope"
WSA: Final = "http://www.w3.org/2005/08/addressing"
XDSB: Final = "urn:ihe:iti:xds-b:2007"
LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
# Caller context header (author idNat_PS, structure idNat_Struct): lgo's stand-in for the DMP's VIHF
# SAML assertion, which needs the CPS signature chain that a simulator cannot check meaningfully.
# Invented, so it lives in the profile module (contracts/dmp/profile.json).
CTX: Final = profile.CTX
NSMAP: Final = {
    "soap": SOAP,
    "wsa": WSA,
    "xdsb": XDSB,
    "lcm": LCM,
    "rim": RIM,
    "rs": RS,
    "query": QUERY,
    "ctx": CTX,
}

ACTION_PROVIDE: Final = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ACTION_QUERY: Final = "urn:ihe:iti:2007:RegistryStoredQuery"
ACTION_RETRIEVE: Final = "urn:ihe:iti:2007:RetrieveDocumentSet"

STATUS_SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
STATUS_FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
STATUS_APPROVED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
ERROR_SEVERITY: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"

OBJECT_TYPE_DOCUMENT_ENTRY: Final = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
CLASS_SUBMISSION_SET: Final = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
ASSOCIATION_HAS_MEMBER: Final = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
FIND_DOCUMENTS: Final = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"

# DocumentEntry classifications / external identifiers
DE_CLASS_CODE: Final = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY: Final = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_FORMAT_CODE: Final = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_FACILITY_TYPE: Final = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING: Final = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE: Final = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_AUTHOR: Final = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_PATIENT_ID: Final = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID: Final = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
# SubmissionSet
SS_UNIQUE_ID: Final = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SS_SOURCE_ID: Final = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_PATIENT_ID: Final = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_CONTENT_TYPE: Final = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_AUTHOR: Final = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"

Element = etree._Element


def q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def sub(parent: Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> Element:
    element = etree.SubElement(parent, q(ns, tag), attrib=attrs)
    if text is not None:
        element.text = text
    return element


def envelope(
    action: str, *, author_idnat: str, structure_idnat: str, message_id: str | None = None
) -> tuple[Element, Element]:
    """A SOAP 1.2 envelope with WS-Addressing and caller headers; returns ``(envelope, body)``."""
    root = etree.Element(q(SOAP, "Envelope"), nsmap=NSMAP)
    header = sub(root, SOAP, "Header")
    sub(header, WSA, "Action", action, **{q(SOAP, "mustUnderstand"): "true"})
    sub(header, WSA, "MessageID", message_id or f"urn:uuid:{uuid.uuid4()}")
    context = sub(header, CTX, "DmpContext")
    sub(context, CTX, "Author", author_idnat)
    sub(context, CTX, "Structure", structure_idnat)
    body = sub(root, SOAP, "Body")
    return root, body


def patient_id(ins: str, oid: str) -> str:
    """XDS patientId (HL7 v2 CX): ``<INS>^^^&<OID>&ISO^NH``."""
    return f"{ins}^^^&{oid}&ISO^NH"


def slot(parent: Element, name: str, *values: str) -> Element:
    element = sub(parent, RIM, "Slot", name=name)
    value_list = sub(element, RIM, "ValueList")
    for value in values:
        sub(value_list, RIM, "Value", value)
    return element


def slot_values(parent: Element, name: str) -> list[str]:
    found = parent.find(f"rim:Slot[@name='{name}']", NSMAP)
    if found is None:
        return []
    return [v.text or "" for v in found.iterfind("rim:ValueList/rim:Value", NSMAP)]


def localized(parent: Element, tag: str, text: str) -> Element:
    element = sub(parent, RIM, tag)
    sub(element, RIM, "LocalizedString", value=text)
    return element


def classification(
    parent: Element, scheme: str, object_id: str, code: str, system: str, display: str
) -> Element:
    element = sub(
        parent,
        RIM,
        "Classification",
        classificationScheme=scheme,
        classifiedObject=object_id,
        nodeRepresentation=code,
        id=f"urn:uuid:{uuid.uuid4()}",
        objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification",
    )
    slot(element, "codingScheme", system)
    localized(element, "Name", display)
    return element


def external_identifier(
    parent: Element, scheme: str, object_id: str, value: str, name: str
) -> Element:
    element = sub(
        parent,
        RIM,
        "ExternalIdentifier",
        identificationScheme=scheme,
        registryObject=object_id,
        value=value,
        id=f"urn:uuid:{uuid.uuid4()}",
        objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier",
    )
    localized(element, "Name", name)
    return element


def find_classification(parent: Element, scheme: str) -> Element | None:
    return parent.find(f"rim:Classification[@classificationScheme='{scheme}']", NSMAP)


def find_external_id(parent: Element, scheme: str) -> str | None:
    found = parent.find(f"rim:ExternalIdentifier[@identificationScheme='{scheme}']", NSMAP)
    return found.get("value") if found is not None else None
