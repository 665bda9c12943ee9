"""The audit trail: one JSON log line per management action.

Who (`admin` or a key name), what (`model.create`, `key.revoke`, ...) and on
what; never a secret. The lines go to the relay's JSON log under the logger
`app.audit`, so a log shipper can route them apart.
"""

import logging

log = logging.getLogger("app.audit")


def record(actor, action, obj, **details):
    log.info(
        "audit",
        extra={
            "fields": {"audit": True, "actor": actor, "action": action, "object": obj, **details}
        },
    )
