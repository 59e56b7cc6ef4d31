import pytest

from lgo.core.errors import Conflict, LgoError


class _Sample(Conflict):
    slug = "sample"
    title = "Exemple"


def test_problem_carries_type_title_status_and_extensions() -> None:
    body = _Sample("détail", tries_left=2).problem("/v1/x")
    assert body == {
        "type": "urn:lgo:problem:sample",
        "title": "Exemple",
        "status": 409,
        "detail": "détail",
        "instance": "/v1/x",
        "tries_left": 2,
    }


@pytest.mark.parametrize("member", ["status", "type", "title", "instance"])
def test_an_extension_cannot_override_a_reserved_member(member: str) -> None:
    with pytest.raises(TypeError, match="reserved"):
        LgoError(**{member: "RECUP"})
