"""Response models of the API, one module per resource (named schemas of /v1/openapi.json).

Routes declare these models with ``answers(...)`` (lgo/api/contract.py); a route turns its service's
typed result (a dataclass) into its model with :func:`view_of`, and FastAPI serialises it.
"""

import dataclasses
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict


class View(BaseModel):
    """Base of every response model.

    Members a model does not name are left out of the answer (pydantic's default), and the schema
    does not forbid them: a later version may add members without breaking generated clients.
    """


class DocumentProblem(View):
    """Why the act's document was not produced (the act itself was recorded): a problem's
    members without ``status`` and ``instance``; ``type`` is ``urn:lgo:problem:<code>``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    detail: str | None = None


ViewT = TypeVar("ViewT", bound=BaseModel)


def view_of(model: type[ViewT], result: Any, *, omit_none: tuple[str, ...] = ()) -> ViewT:
    """The response model of a service's typed result (a dataclass). A member named in
    ``omit_none`` is left out of the answer when the result has none (``answers`` excludes unset
    members): the answer says nothing rather than ``null`` (e.g. ``document_problem``)."""
    data = dataclasses.asdict(result)
    for name in omit_none:
        if data.get(name) is None:
            data.pop(name, None)
    return model.model_validate(data)
