"""Browser tests leave docs/screenshots/ alone unless LGO_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.screenshots import DOCS_SCREENSHOTS, screenshot_dir


def test_a_normal_run_writes_into_its_scratch_folder(tmp_path: Path) -> None:
    for environ in ({}, {"LGO_UPDATE_SCREENSHOTS": "0"}, {"LGO_UPDATE_SCREENSHOTS": "yes"}):
        folder = screenshot_dir(tmp_path / "shots", environ)
        assert folder == tmp_path / "shots" and folder.is_dir()


def test_the_variable_points_at_the_committed_pictures(tmp_path: Path) -> None:
    folder = screenshot_dir(tmp_path / "shots", {"LGO_UPDATE_SCREENSHOTS": "1"})
    assert folder == DOCS_SCREENSHOTS
    assert (folder / "counter-patient.png").is_file()  # the README's pictures live there
    assert not (tmp_path / "shots").exists()


def test_the_counter_page_tests_use_it() -> None:
    source = (Path(__file__).parents[1] / "e2e" / "test_counter_page.py").read_text()
    assert "screenshot_dir(" in source and '"docs" / "screenshots"' not in source
