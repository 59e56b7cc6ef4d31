"""``lgo doctor`` says whether the CI-SIS kit is configured, and a red line says what to do."""

from __future__ import annotations

from pathlib import Path

from lgo.core.settings import load_settings
from lgo.doctor.local import check_cisis_kit
from lgo.documents.conformance import CisisKit


def test_without_a_kit_the_line_is_information(tmp_path: Path) -> None:
    result = check_cisis_kit(load_settings(state_dir=tmp_path))
    assert result.ok and result.info
    assert "non configuré" in result.detail and "documents.cisis_kit_dir" in result.detail


def test_a_wrong_kit_folder_is_red_and_says_what_to_do(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, documents={"cisis_kit_dir": str(tmp_path)})
    result = check_cisis_kit(settings)
    assert not result.ok
    assert "CDA_extended.xsd" in result.detail and "corrigez" in result.detail
    assert list(tmp_path.iterdir()) == []  # the doctor only reads


def test_a_usable_kit_is_green(cisis_kit: CisisKit, tmp_path: Path) -> None:
    settings = load_settings(
        state_dir=tmp_path, documents={"cisis_kit_dir": str(cisis_kit.kit_dir)}
    )
    result = check_cisis_kit(settings)
    assert result.ok and not result.info
    assert str(cisis_kit.kit_dir) in result.detail
