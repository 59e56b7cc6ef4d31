"""hwsim never falls back to the plain mode (vpcd on 0.0.0.0) unless LGO_HWSIM_ISOLATION=plain."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from hwsim import runtime
from hwsim.errors import SimError
from hwsim.runtime import detect_isolation


def _unshare(monkeypatch: pytest.MonkeyPatch, works: bool) -> list[list[str]]:
    probes: list[list[str]] = []

    def run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        probes.append(cmd)
        return subprocess.CompletedProcess(cmd, 0 if works else 1, b"", b"")

    monkeypatch.setattr(runtime.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(runtime.subprocess, "run", run)
    return probes


@pytest.fixture
def root_without_system_pcscd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runtime.os, "geteuid", lambda: 0)
    monkeypatch.setattr(runtime, "SYSTEM_SOCKET", tmp_path / "absent" / "pcscd.comm")


def test_namespaces_refused_without_the_variable_is_an_error_in_french(
    monkeypatch: pytest.MonkeyPatch, root_without_system_pcscd: None
) -> None:
    monkeypatch.delenv("LGO_HWSIM_ISOLATION", raising=False)
    _unshare(monkeypatch, works=False)
    with pytest.raises(SimError) as refused:
        detect_isolation()
    assert "LGO_HWSIM_ISOLATION=plain" in refused.value.message
    assert "0.0.0.0" in refused.value.message and "refusés" in refused.value.message


def test_plain_only_when_asked_for(
    monkeypatch: pytest.MonkeyPatch, root_without_system_pcscd: None
) -> None:
    monkeypatch.setenv("LGO_HWSIM_ISOLATION", "plain")
    probes = _unshare(monkeypatch, works=False)
    assert detect_isolation() == "plain"
    assert probes == []  # asked for: no probe needed


def test_plain_asked_for_still_refuses_a_live_system_pcscd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    live = tmp_path / "pcscd.comm"
    live.touch()
    monkeypatch.setattr(runtime, "SYSTEM_SOCKET", live)
    monkeypatch.setenv("LGO_HWSIM_ISOLATION", "plain")
    with pytest.raises(SimError, match="pcscd système"):
        detect_isolation()


def test_namespaces_are_used_when_they_work(
    monkeypatch: pytest.MonkeyPatch, root_without_system_pcscd: None
) -> None:
    monkeypatch.delenv("LGO_HWSIM_ISOLATION", raising=False)
    probes = _unshare(monkeypatch, works=True)
    assert detect_isolation() == "netns"
    assert probes and probes[0][0] == "unshare"


def test_the_runtime_refuses_plain_without_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LGO_HWSIM_ISOLATION", raising=False)
    with pytest.raises(SimError, match="LGO_HWSIM_ISOLATION=plain"):
        runtime.serve(tmp_path, 2, "plain")
