"""Flask's JSON, with its encoders built once.

json.dumps with any option set (Flask sets default=, ensure_ascii=,
sort_keys= and separators=) builds a JSONEncoder on every call; every JSON
answer goes through here, so the two encoders Flask uses (plain, and the
compact one its `response` asks for) are built when the app is. Only
`dumps`, the provider's documented override point, is replaced: Flask's own
`response` calls it.
"""

import json

from flask.json.provider import DefaultJSONProvider

# What DefaultJSONProvider.response passes to dumps outside debug mode.
_COMPACT = {"separators": (",", ":")}


class JSONProvider(DefaultJSONProvider):
    sort_keys = False  # the order the relay (or the remote) gave

    def __init__(self, app):
        super().__init__(app)
        options = {
            "default": self.default,
            "ensure_ascii": self.ensure_ascii,
            "sort_keys": self.sort_keys,
        }
        self._compact = json.JSONEncoder(separators=(",", ":"), **options).encode
        self._plain = json.JSONEncoder(**options).encode

    def dumps(self, obj, **kwargs):
        if not kwargs:
            return self._plain(obj)
        if kwargs == _COMPACT:
            return self._compact(obj)
        return super().dumps(obj, **kwargs)
