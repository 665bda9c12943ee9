"""Flask's JSON, with its encoders built once.

json.dumps with any option set (Flask sets default=, ensure_ascii=,
sort_keys= and separators=) builds a JSONEncoder on every call; every JSON
answer goes through here, so the two encoders Flask would use (compact, and
indented for debug) are built when the app is.
"""

import json

from flask.json.provider import DefaultJSONProvider


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
        return super().dumps(obj, **kwargs)

    def response(self, *args, **kwargs):
        if (self.compact is None and self._app.debug) or self.compact is False:
            return super().response(*args, **kwargs)  # indented
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self._compact(obj) + "\n", mimetype=self.mimetype)
