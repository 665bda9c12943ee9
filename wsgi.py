# gevent must patch the standard library before anything imports it.
from gevent import monkey

monkey.patch_all()

from app import create_app  # noqa: E402

app = create_app()
