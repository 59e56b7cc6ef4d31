"""A tiny ISO 7816-4 file model shared by the virtual cards: DFs holding transparent EFs."""

from __future__ import annotations

from dataclasses import dataclass, field

from hwsim.cards.base import (
    SW_FILE_NOT_FOUND,
    SW_SECURITY_NOT_SATISFIED,
    SW_WRONG_P1P2,
    Apdu,
    Card,
    SwError,
)
from hwsim.cards.tlv import tlv

SW_NO_CURRENT_EF = 0x6986
SW_INCORRECT_P1P2 = 0x6A86


@dataclass
class EF:
    """Transparent elementary file. `protected` files answer 69 82 to READ BINARY."""

    fid: int
    content: bytes
    sfi: int | None = None
    protected: bool = False
    acl: bytes = b""  # IAS-ECC access rules (A1 {8C …}) appended to the FCP when set

    def fcp(self) -> bytes:
        body = (
            tlv(0x80, len(self.content).to_bytes(2, "big"))
            + tlv(0x82, b"\x01")
            + tlv(0x83, self.fid.to_bytes(2, "big"))
        )
        return tlv(0x62, body + self.acl)


@dataclass
class DF:
    """Dedicated file (application), selectable by AID and/or FID."""

    name: str
    aid: bytes = b""
    fid: int | None = None
    efs: list[EF] = field(default_factory=list)
    acl: bytes = b""  # set: SELECT answers an IAS-ECC FCP (62, type 38, access rules)

    def by_fid(self, fid: int) -> EF | None:
        return next((ef for ef in self.efs if ef.fid == fid), None)

    def by_sfi(self, sfi: int) -> EF | None:
        return next((ef for ef in self.efs if ef.sfi == sfi), None)

    def fci(self) -> bytes:
        if self.acl:
            fid = tlv(0x83, self.fid.to_bytes(2, "big")) if self.fid is not None else b""
            name = tlv(0x84, self.aid) if self.aid else b""
            return tlv(0x62, tlv(0x82, b"\x38") + fid + name + self.acl)
        ident = tlv(0x84, self.aid) if self.aid else tlv(0x83, (self.fid or 0).to_bytes(2, "big"))
        return tlv(0x6F, ident)


class FileCard(Card):
    """Card with DFs/EFs, SELECT (A4) and READ BINARY (B0) handlers."""

    def __init__(self, mf: DF, apps: list[DF]) -> None:
        super().__init__()
        self.mf = mf
        self.apps = apps
        self.current_df = mf
        self.current_ef: EF | None = None
        self.handlers[0xA4] = self.select
        self.handlers[0xB0] = self.read_binary

    def on_reset(self) -> None:
        super().on_reset()
        self.current_df = self.mf
        self.current_ef = None

    # SELECT --------------------------------------------------------------------------------
    def select(self, apdu: Apdu) -> bytes:
        target = self._resolve(apdu)
        if isinstance(target, DF):
            self.current_df, self.current_ef = target, None
            answer = target.fci()
        else:
            self.current_ef = target
            answer = target.fcp()
        if apdu.p2 & 0x0C == 0x0C:  # no response data requested
            return b""
        if apdu.p2 not in (0x00, 0x04):
            raise SwError(SW_INCORRECT_P1P2)
        return self.respond(apdu, answer)

    def _resolve(self, apdu: Apdu) -> DF | EF:
        if apdu.p1 == 0x04:
            return self._select_aid(apdu.data)
        if apdu.p1 in (0x00, 0x02):
            return self._select_fid(apdu.data)
        if apdu.p1 == 0x08 or apdu.p1 == 0x09:
            return self._select_path(apdu.data)
        raise SwError(SW_INCORRECT_P1P2)

    def _select_aid(self, aid: bytes) -> DF:
        for df in [self.mf, *self.apps]:
            if df.aid and df.aid == aid:
                return df
        raise SwError(SW_FILE_NOT_FOUND)

    def _select_fid(self, data: bytes) -> DF | EF:
        if not data or data == b"\x3f\x00":
            return self.mf
        if len(data) != 2:
            raise SwError(SW_INCORRECT_P1P2)
        fid = int.from_bytes(data, "big")
        found = self.current_df.by_fid(fid)
        if found is None:
            raise SwError(SW_FILE_NOT_FOUND)
        return found

    def _select_path(self, data: bytes) -> DF | EF:
        if len(data) % 2 or not data:
            raise SwError(SW_INCORRECT_P1P2)
        fids = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        if fids[0] == 0x3F00:
            fids = fids[1:]
        node: DF | EF = self.mf
        for fid in fids:
            if not isinstance(node, DF):
                raise SwError(SW_FILE_NOT_FOUND)
            child = node.by_fid(fid) or next((a for a in self.apps if a.fid == fid), None)
            if child is None:
                raise SwError(SW_FILE_NOT_FOUND)
            node = child
        return node

    # READ BINARY ---------------------------------------------------------------------------
    def read_binary(self, apdu: Apdu) -> bytes:
        if apdu.p1 & 0x80:
            ef = self.current_df.by_sfi(apdu.p1 & 0x1F)
            if ef is None:
                raise SwError(SW_FILE_NOT_FOUND)
            self.current_ef = ef
            offset = apdu.p2
        else:
            if self.current_ef is None:
                raise SwError(SW_NO_CURRENT_EF)
            ef = self.current_ef
            offset = (apdu.p1 << 8) | apdu.p2
        if ef.protected:
            raise SwError(SW_SECURITY_NOT_SATISFIED)
        if offset >= len(ef.content):
            raise SwError(SW_WRONG_P1P2)
        return self.fit_le(apdu, ef.content[offset : offset + 256])
