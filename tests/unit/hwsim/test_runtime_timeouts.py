"""Every command the simulator runs while setting up its namespace is bounded in time."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from hwsim import runtime


def test_namespace_setup_commands_have_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[list[str], dict[str, Any]]] = []

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(runtime.subprocess, "run", fake_run)
    runtime._setup_namespace(tmp_path)
    assert [cmd[0] for cmd, _ in calls] == ["ip", "mount"]
    for _, kwargs in calls:
        assert kwargs.get("timeout") is not None and kwargs["timeout"] > 0
        assert kwargs.get("check") is True
