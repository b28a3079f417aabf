"""Where screening hands events to the risk engine.

The help button calls :func:`help_request_received` inside the help request's own transaction, so
that the red alert the risk engine raises there commits (or not) together with the press, never
through the broker or a worker. The risk engine itself (tiers, rules, alerts, escalation) is built
in the risk issue; this module is its one entry point for help presses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from screening.models import HelpRequest

#: Functions called with (help_request, new_emergency) inside the transaction. The risk engine
#: registers its red-alert handler here; tests register spies.
HELP_REQUEST_HANDLERS: list = []


def help_request_received(*, help_request: HelpRequest, new_emergency: bool) -> None:
    for handler in HELP_REQUEST_HANDLERS:
        handler(help_request=help_request, new_emergency=new_emergency)
