"""Roles as data: a frozen registry of what each role may do.

A permission is a dotted string ("users.manage"). Routes ask `has_permission(user, "...")`; the
division scope (what records a user sees) is a separate question answered in `scope.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from cityops.core.i18n import N_

# Every permission a role may hold, with what it allows. Later packages add theirs here.
PERMISSIONS: MappingProxyType[str, str] = MappingProxyType({
    "pii.view": "see phone and ID numbers unmasked (each read is audited)",
    "users.read": "list and open user accounts in scope",
    "users.manage": "create, change and deactivate user accounts in scope",
    "audit.read": "read the audit log in scope",
    "tokens.manage": "create and revoke API tokens of other users in scope",
    "places.read": "browse divisions, grids and the map",
    "cases.report": "report an incident or problem",
    "cases.dispatch": "receive, dispatch, escalate and close cases",
    "cases.handle": "work cases assigned to one's org unit",
    "governance.read": "see disputes, rosters, meetings, project risk assessments and the risk register",
    "governance.manage": "record disputes and mediation, rosters, meetings, risk assessments and risks",
    "visits.record": "record household visits and patrols (grid workers)",
    "police.transfer": "transfer non-police 110 calls as cases (police department accounts only)",
    "inspections.manage": "plan and run inspections, record credit findings",
    "dashboard.view": "see the city's figures and drill down",
    "devices.view": "see devices in scope, their status and telemetry",
    "devices.manage": "register devices, manage their access tokens, read the ingestion dead letters",
    "warnings.view": "see natural-disaster warnings and their CAP messages",
    "warnings.issue": "issue, update, extend and cancel warnings; import CAP warnings of other senders",
    "warnings.respond": "report a warning's response in one's area (people evacuated from a village)",
    "credit.view": "see the register of business entities in scope (and those one's department supervises)",
    "credit.manage": "import and correct the register of business entities",
    "credit.report": "send credit records from a department's system (API token) or import them from a file",
    "credit.inspect": "open an entity's inspector view: tags, risk class, the score explained, every record "
                      "(each view is audited)",
    "credit.penalize": "issue administrative penalties with their four documents served together",
    "credit.repair": "take in and decide credit repair applications; manage repair exchange partners",
    "lending.manage": "publish loan products and decide loan applications for a bank (信易贷)",
    "livability.view": "see walking networks, walking access and isochrones (the 15-minute living circle)",
    "livability.manage": "import the facilities of the 15-minute living circle",
    "enterprise.self": "act for one's own enterprise",
    "services.apply": "apply for government services",
})


@dataclass(frozen=True)
class Role:
    code: str
    name_zh: str
    name_en: str
    permissions: frozenset[str]
    # Staff roles work in a division scope and belong to an org unit; the public roles do not.
    staff: bool = True

    @property
    def label(self) -> str:
        """English name, the msgid the pages translate."""
        return self.name_en


def _role(code: str, zh: str, en: str, *perms: str, staff: bool = True) -> Role:
    unknown = set(perms) - set(PERMISSIONS)
    if unknown:
        raise ValueError(f"role {code}: unknown permissions {sorted(unknown)}")
    return Role(code, zh, en, frozenset(perms), staff)


ROLES: MappingProxyType[str, Role] = MappingProxyType({r.code: r for r in (
    _role("grid_worker", "网格员", N_("Grid worker"),
          "places.read", "users.read", "cases.report", "cases.handle", "governance.read",
          "visits.record", "warnings.view", "warnings.respond"),
    _role("centre_operator", "综治中心工作人员", N_("Centre operator"),
          "pii.view", "places.read", "users.read", "audit.read", "cases.report", "cases.dispatch",
          "cases.handle", "governance.read", "governance.manage", "visits.record", "devices.view",
          "warnings.view", "warnings.respond", "credit.view"),
    _role("department_handler", "部门办理人员", N_("Department handler"),
          "places.read", "users.read", "cases.handle", "police.transfer", "devices.view", "warnings.view",
          "credit.view", "credit.report"),
    _role("inspector", "监管执法人员", N_("Inspector"),
          "places.read", "users.read", "cases.handle", "inspections.manage", "credit.view", "credit.manage",
          "credit.penalize", "credit.repair", "credit.report", "credit.inspect"),
    # The duty officer (值班员) of an operations centre: watches the stations and warnings of the division,
    # issues and changes warnings there and confirms what the stations propose; reads what the response
    # needs (places, colleagues, rosters, devices) and reports cases, but dispatches none.
    _role("duty_officer", "值班员", N_("Duty officer"),
          "places.read", "users.read", "cases.report", "governance.read", "devices.view", "warnings.view",
          "warnings.issue", "warnings.respond"),
    _role("leader", "领导", N_("Leader"),
          "places.read", "users.read", "dashboard.view", "governance.read", "warnings.view", "credit.view",
          "livability.view"),
    _role("admin", "系统管理员", N_("Administrator"),
          *(p for p in PERMISSIONS if p not in ("enterprise.self", "services.apply"))),
    _role("enterprise_user", "企业用户", N_("Enterprise user"),
          "cases.report", "enterprise.self", staff=False),
    _role("citizen", "群众", N_("Citizen"),
          "cases.report", "services.apply", staff=False),
)})


class HasRole(Protocol):
    @property
    def role(self) -> str: ...


def get_role(code: str) -> Role:
    try:
        return ROLES[code]
    except KeyError:
        raise KeyError(f"unknown role {code!r}; known: {', '.join(ROLES)}") from None


def has_permission(user: HasRole | None, permission: str) -> bool:
    """True when the user's role grants the permission (False for no user or an unknown role)."""
    if user is None:
        return False
    role = ROLES.get(user.role)
    return role is not None and permission in role.permissions


def can_view_pii(user: HasRole | None) -> bool:
    return has_permission(user, "pii.view")
