"""``/fleet/config``: every gateway's running configuration version beside its health, and the
rollouts (issue 19). Admins and engineers, their communities only.

Health is the gateway page's headline (:meth:`cloud.queries.gateways.GatewayHealth.summary`:
online, queue depth, poll lateness p99, errors of the last hour, last seen) — one read model,
not a second reading of the status keys. The version and its state are the gateway's own
report (``status.health.config``, stored by the ``config-rollout`` component). A halted
rollout can be resumed or aborted from here, with the same functions (and audit) as the API.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from cloud.auth.deps import PageUser, app_pool, require_same_origin
from cloud.auth.roles import Role
from cloud.http.deps import get_clock
from cloud.http.rendering import render
from cloud.ops.fleet import configs, rollout
from cloud.queries.gateways import load_gateways

router = APIRouter(include_in_schema=False)

ACTIONS = ("resume", "abort")


@router.get("/fleet/config")
async def fleet_config_page(request: Request, user: PageUser) -> Response:
    if user.role not in (Role.admin, Role.engineer):
        return render(request, "error.html", user, status.HTTP_403_FORBIDDEN, message_key="error.forbidden")
    async with app_pool(request).connection() as conn:
        gateways = await load_gateways(conn, user)
        states = await configs.config_states(conn)
        found = await configs.rollouts(conn, all_communities=user.is_admin, communities=list(user.communities),
                                       limit=20)
        targets = {r.id: await configs.targets(conn, r.id) for r in found}
    return render(request, "fleet_config.html", user, gateways=gateways, states=states, rollouts=found,
                  targets=targets)


@router.post("/fleet/config/rollouts/{rollout_id}/{action}")
async def fleet_config_action(request: Request, rollout_id: int, action: str, user: PageUser) -> Response:
    require_same_origin(request)
    if user.role not in (Role.admin, Role.engineer):
        return render(request, "error.html", user, status.HTTP_403_FORBIDDEN, message_key="error.forbidden")
    async with app_pool(request).connection() as conn:
        # another tenant's rollout is not found, whatever the action (nothing about it leaks)
        visible = await configs.rollouts(conn, all_communities=user.is_admin, communities=list(user.communities),
                                         rollout_id=rollout_id)
        if not visible:
            return render(request, "error.html", user, status.HTTP_404_NOT_FOUND, message_key="error.not_found")
        if action in ACTIONS:  # anything else: nothing to do, back to the page
            move = rollout.resume if action == "resume" else rollout.abort
            await move(conn, rollout_id, by=user.username, at=get_clock(request).now())
    return RedirectResponse("/fleet/config", status.HTTP_303_SEE_OTHER)
