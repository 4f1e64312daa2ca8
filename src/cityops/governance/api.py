"""JSON routes of the governance package under /api/governance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.governance import service
from cityops.governance.schemas import PoliceTransferCreate, PoliceTransferRead, TransferCategory
from cityops.places import service as places_service

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/governance", tags=["governance"])

IncidentNo = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z\-_.]+$")]
PoliceSystem = Annotated[User, Depends(require_permission("police.transfer"))]
TRANSFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Already received: the case made the first time", "model": PoliceTransferRead},
    403: {"description": "Not an account of the police department"},
    422: {"description": "Invalid input; names the field"},
}


@router.post("/police-transfers", response_model=PoliceTransferRead, status_code=201,
             responses=TRANSFER_RESPONSES)
def receive_transfer(body: PoliceTransferCreate, request: Request, response: Response,
                     session: SessionDep, sender: PoliceSystem) -> PoliceTransferRead:
    """Take in a non-police 110 call as a case (201); the same incident number again answers the
    same case (200). The result is POSTed to `callback_url`, signed, when the case closes."""
    index = places_service.cache_for(request.app.state).index(session)
    transfer, created = service.receive_transfer(session, data=body, index=index, sender=sender)
    if not created:
        response.status_code = 200
    return service.to_read(session, transfer)


@router.get("/police-transfer-categories", response_model=list[TransferCategory])
def transfer_categories(sender: PoliceSystem) -> list[TransferCategory]:
    """The categories a transfer may carry and the case type each becomes."""
    return service.categories()


@router.get("/police-transfers/{incident_no}", response_model=PoliceTransferRead,
            responses={403: TRANSFER_RESPONSES[403], 404: {"description": "No such incident number"}})
def get_transfer(incident_no: IncidentNo, session: SessionDep, sender: PoliceSystem) -> PoliceTransferRead:
    """Where a transferred call stands: the case, its status and handling unit."""
    return service.to_read(session, service.get_transfer(session, viewer=sender, incident_no=incident_no))
