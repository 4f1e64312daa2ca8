"""What the case page shows besides the case itself: attachments, feedback, possible duplicates and
watching. Kept apart from pages.py so those panels grow without touching the page's own code."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cityops.cases import attachments, duplicates, feedback, neighbours, watchers
from cityops.cases.schemas import CaseRead
from cityops.cases.workflow import FINAL_STATES
from cityops.core.auth.models import User
from cityops.core.i18n import N_

# Timeline lines that do not move the case.
ACTION_LABELS = {
    "attach": N_("Attached a file"),
    "feedback": N_("Reporter feedback"),
    "merged_in": N_("A duplicate was merged in"),
}
RATING_LABELS = {
    1: N_("Very unsatisfied"),
    2: N_("Unsatisfied"),
    3: N_("Fair"),
    4: N_("Satisfied"),
    5: N_("Very satisfied"),
}


def context(session: Session, *, viewer: User, case: CaseRead) -> dict[str, Any]:
    return {
        "extra_action_labels": ACTION_LABELS,
        "attachments": attachments.list_attachments(session, viewer=viewer, case_id=case.id),
        "feedback": feedback.of_case(session, viewer=viewer, case_id=case.id),
        "can_rate": feedback.can_rate(session, viewer=viewer, case_id=case.id),
        "rating_labels": RATING_LABELS,
        "watching": watchers.is_watching(session, user_id=viewer.id, case_id=case.id),
        "similar": duplicates.similar_to_case(session, viewer=viewer, case_id=case.id)
        if case.status not in FINAL_STATES
        else [],
        # Cases near a boundary of their grid or village: the units across it, to re-route a case.
        "neighbours": neighbours.for_case(session, viewer=viewer, case=case)
        if case.status not in FINAL_STATES and neighbours.may_see(viewer)
        else None,
    }
