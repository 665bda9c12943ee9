"""Form fields read as the JSON API's payloads take them: an empty field is
a field not given, and a malformed number is a 400 naming its field."""

from app.errors import BadRequest


def text(form, name):
    value = form.get(name, "").strip()
    return value or None


def number(form, name):
    value = text(form, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name}: must be a whole number", param=name) from None


def listed(form, name):
    """A comma-separated field as a list (None when empty)."""
    value = text(form, name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]
