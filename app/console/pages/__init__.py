"""The console's pages, each a module registering its routes on the blueprint."""

from app.console import auth  # noqa: F401  (before every page: who is signed in)
from app.console.pages import audit, keys, mine, models, overview, sign_in, usage  # noqa: F401
