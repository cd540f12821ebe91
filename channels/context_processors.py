"""Template context for every page: channels of the account that need reauthorising.

An ``AuthError`` anywhere pauses a channel (``needs_reauth``); the seller must see that on every
page, not only on the channel's own page, because nothing syncs until they act. One small query
per page view, only for signed-in members.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import Role
from accounts.tenancy import current_membership, has_role
from channels.models import ConnectionState, SalesChannel


def reauth_banner(request: HttpRequest) -> dict[str, Any]:
    """``channels_needing_reauth``: the account's live channels in ``needs_reauth`` (maybe empty)."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    membership = current_membership(request)
    if membership is None:
        return {}
    channels = list(
        SalesChannel.objects.live()
        .filter(account_id=membership.account_id, connection_state=ConnectionState.NEEDS_REAUTH)
        .only("id", "name", "last_error")
        .order_by("name")[:10]
    )
    # Members may not change credentials: they are told, and an admin or owner follows the link.
    return {"channels_needing_reauth": channels, "can_reauthorise": has_role(request, Role.ADMIN)}
