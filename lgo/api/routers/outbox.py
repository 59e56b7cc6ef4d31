"""``/v1/outbox``: messages waiting for (or refused by) national services; retry a failed one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from lgo.api.contract import answers
from lgo.api.deps import DatabaseDep, DispensingPartDep, require_counter
from lgo.api.direct import CounterRoute
from lgo.api.schemas.outbox import OutboxList, OutboxMessage
from lgo.services import outbox
from lgo.services.dispensing_errors import OutboxMessageNotFound, OutboxRetryRefused

router = APIRouter(
    tags=["outbox"], dependencies=[Depends(require_counter)], route_class=CounterRoute
)

Status = Literal["pending", "processing", "delivered", "failed"]


@router.get("/v1/outbox", summary="Messages en attente, en échec ou livrés", **answers(OutboxList))
def list_outbox(
    db: DatabaseDep,
    dispensing: DispensingPartDep,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    return {
        "degraded": dispensing.worker.degraded,
        "messages": outbox.list_messages(db, status, limit),
    }


@router.post(
    "/v1/outbox/{message_id}/retry",
    summary="Relancer un message en échec",
    **answers(OutboxMessage, OutboxMessageNotFound, OutboxRetryRefused),
)
def retry(
    message_id: Annotated[int, Path(ge=1, le=2**63 - 1)],  # beyond a 64-bit key: a 422, not a 500
    db: DatabaseDep,
    dispensing: DispensingPartDep,
) -> dict[str, Any]:
    message = outbox.retry(db, message_id)
    dispensing.worker.notify()
    return message
