"""The audit trail: one JSON log line per management action.

Who (`admin` or a key name), what (`model.create`, `key.revoke`, ...) and on
what; never a secret (a remote_host is shown without its userinfo and
query values). The lines go to the relay's JSON log under the logger
`app.audit`, so a log shipper can route them apart.
"""

import logging

from app.catalog.urls import shown_url

log = logging.getLogger("app.audit")


def record(actor, action, obj, **details):
    if details.get("remote_host"):
        details["remote_host"] = shown_url(details["remote_host"])
    log.info(
        "audit",
        extra={
            "fields": {"audit": True, "actor": actor, "action": action, "object": obj, **details}
        },
    )
