"""People fixtures: keys computed, malformed files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.fixtures import load_people, luhn_key, nir_key, with_luhn
from hwsim.fixtures.people import FixtureError


def luhn_valid(number: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(number)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def test_nir_keys_match_formats_examples() -> None:
    assert nir_key("2991275056999") == "43"
    assert nir_key("2100675056321") == "39"


def test_corsican_substitution() -> None:
    assert nir_key("175032A004005") == f"{97 - 1750319004005 % 97:02d}"
    assert nir_key("278072B033012") == f"{97 - 2780718033012 % 97:02d}"


def test_rpps_luhn() -> None:
    assert with_luhn("1099999999") == "10999999997"
    assert luhn_key("1099999888") == "2"


def test_every_fixture_number_is_valid() -> None:
    people = load_people()
    assert people.pharmacists and people.prescribers
    for pro in people.professionals.values():
        assert len(pro.rpps) == 11 and luhn_valid(pro.rpps)
        assert pro.idnat == "8" + pro.rpps
    nirs = [b.nir for v in people.vitale.values() for b in v.beneficiaries]
    for nir in nirs:
        body = nir[:13].replace("2A", "19").replace("2B", "18")
        assert int(nir[13:]) == 97 - int(body) % 97
    assert any("2A" in n for n in nirs) and any("2B" in n for n in nirs)
    dates = [b.date_naissance for v in people.vitale.values() for b in v.beneficiaries]
    assert "19800000" in dates
    assert any(len(v.beneficiaries) > 1 for v in people.vitale.values())


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('[[vitale]]\nid="x"\n', "beneficiaire"),
        (
            '[[vitale]]\nid="x"\n[[vitale.beneficiaire]]\nnom="A"\nprenom="B"\n'
            'date_naissance="1980"\nnir_base="1800175000000"\n',
            "8 digits",
        ),
        (
            '[[professionnel]]\nid="p"\nrole="pharmacist"\nrpps_base="123"\nnom="A"\n'
            'prenom="B"\nprofession="Pharmacien"\n',
            "10 digits",
        ),
        (
            '[[professionnel]]\nid="p"\nrole="pharmacist"\nrpps_base="1099999999"\nnom="A"\n'
            'prenom="B"\nprofession="Pharmacien"\npin="12345"\n',
            "4 digits",
        ),
    ],
)
def test_malformed_files_refused(tmp_path: Path, snippet: str, message: str) -> None:
    path = tmp_path / "people.toml"
    path.write_text(snippet)
    with pytest.raises(FixtureError, match=message):
        load_people(path)


def test_people_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "people.toml"
    path.write_text(
        '[[vitale]]\nid="x"\n[[vitale.beneficiaire]]\nnom="Testa"\nprenom="Bob"\n'
        'date_naissance="19800000"\nnir_base="1800175000000"\n'
    )
    monkeypatch.setenv("LGO_HWSIM_PEOPLE", str(path))
    people = load_people()
    assert list(people.vitale) == ["x"] and people.vitale["x"].beneficiaries[0].nom == "TESTA"
