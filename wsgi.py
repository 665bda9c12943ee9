# gevent must patch the standard library before anything imports it.
from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402

from app import create_app  # noqa: E402

app = create_app()

# What the worker has built by now (modules, the app, its caches) lives as long
# as the worker: keep it out of the collector's full passes, which walk every
# tracked object and stop every request in flight meanwhile, so that those
# passes stay short and out of the tail latency (ops/bench/README.md, "Tail").
gc.freeze()
