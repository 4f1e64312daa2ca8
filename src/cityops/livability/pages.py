"""Pages of the 15-minute living circle: the map with coverage layers per category and isochrones on click,
the township and county summaries (/livability), a community's report card
(/livability/communities/{code}) and the gap list with suggested sites (/livability/gaps)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.i18n import N_, locale_of
from cityops.core.templating import NavItem, register_nav, render
from cityops.livability import service
from cityops.livability.categories import catalogue
from cityops.livability.engine import DEFAULT_SPEED_MPS

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
register_nav(
    NavItem(
        "livability",
        N_("Living circle"),
        "/livability",
        order=60,
        permission="livability.view",
        description=N_(
            "The 15-minute living circle: what every community reaches on foot, "
            "what it lacks, and where new facilities would serve the most people."
        ),
    )
)
Viewer = Annotated[User, Depends(require_permission("livability.view"))]
RULES = {"green_300": N_("Green within 300 m"), "park_500": N_("Park within 500 m")}
GROUP_LABELS = {"elderly": N_("Elderly (one old)"), "children": N_("Children (one young)")}
SITES = 10


def _labels(request: Request) -> dict[str, str]:
    """Category names in the page's language (the names come from categories.yaml, in both)."""
    chinese = locale_of(request) == "zh"
    return {c.key: c.name_zh if chinese else c.name_en for c in catalogue().categories.values()}


@router.get("/livability", response_class=HTMLResponse, name="livability")
def overview(
    request: Request,
    session: SessionDep,
    _user: Viewer,
    category: Annotated[str, Query(max_length=40)] = "green_300",
) -> HTMLResponse:
    report = service.report(session)
    names = _labels(request)
    cat = catalogue()
    chinese = locale_of(request) == "zh"
    # The layers in groups: the green-access rules, then each group's categories (一老, 一小 ...).
    layer_groups = [(None, list(RULES))] + [
        (g.name_zh if chinese else g.name_en, [c.key for c in cat.in_group(g.key)])
        for g in cat.groups.values()
    ]
    layers = [key for _label, keys in layer_groups for key in keys]
    if category not in layers:
        category = "green_300"
    config = {
        "layerUrl": "/api/livability/layer",
        "isochroneUrl": "/api/livability/isochrone",
        "network": report.network,
        "category": category,
        "tileUrl": request.app.state.settings.tile_url,
        "communityUrl": "/livability/communities/",
    }
    return render(
        request,
        "livability/overview.html",
        {
            "report": report,
            "names": names,
            "rules": RULES,
            "groups": GROUP_LABELS,
            "layer_groups": layer_groups,
            "category": category,
            "map_config": config,
            "basic": [c for c in catalogue().categories.values() if c.basic],
        },
    )


@router.get("/livability/communities/{code}", response_class=HTMLResponse, name="livability_community")
def community_card(
    request: Request, session: SessionDep, _user: Viewer, code: Annotated[str, Path(max_length=12)]
) -> HTMLResponse:
    row = service.community(session, code=code)
    cat = catalogue()
    groups = [(g, [c for c in cat.in_group(g.key)]) for g in cat.groups.values()]
    return render(
        request,
        "livability/community.html",
        {
            "c": row,
            "groups": groups,
            "names": _labels(request),
            "rules": RULES,
            "green": {r.key: r for r in cat.green_rules},
            "speed": DEFAULT_SPEED_MPS,
        },
    )


@router.get("/livability/gaps", response_class=HTMLResponse, name="livability_gaps")
def gaps(
    request: Request,
    session: SessionDep,
    _user: Viewer,
    category: Annotated[str, Query(max_length=40)] = "kindergarten",
) -> HTMLResponse:
    cat = catalogue()
    if category not in cat.categories:
        category = "kindergarten"
    report = service.report(session, with_communities=True)
    missing = sorted(
        (c for c in report.communities or [] if c.in_scope and c.on_network and c.missing),
        key=lambda c: -c.population,
    )
    lacking = sorted(
        (
            c
            for c in report.communities or []
            if c.in_scope and c.on_network and not c.categories[category].covered
        ),
        key=lambda c: -c.population,
    )
    suggestion = service.suggest_sites(session, category=category, count=SITES)
    return render(
        request,
        "livability/gaps.html",
        {
            "category": cat.categories[category],
            "categories": list(cat.categories.values()),
            "names": _labels(request),
            "rules": RULES,
            "missing": missing,
            "lacking": lacking,
            "suggestion": suggestion,
            "report": report,
        },
    )
