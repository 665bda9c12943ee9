"""Models: the list (remote as clients see it, type, price, context length,
fallbacks), and create, edit, copy and delete. The remote API key is
write-only: a field to replace it, never a value shown back."""

from flask import g, redirect, render_template, request, url_for

from app.access import audit
from app.catalog import describe, registry
from app.catalog.names import normalize_model_name
from app.catalog.urls import shown_url
from app.console.auth import admin_page
from app.console.blueprint import bp
from app.console.forms import listed, number, text
from app.spend import prices
from app.surfaces.admin.model_schemas import CopySchema, CreateSchema
from app.surfaces.schema import load

_create = CreateSchema()
_copy = CopySchema()


def _row(model):
    price = prices.of(model)
    return {
        "name": model.name,
        "remote": shown_url(model.remote_host),
        "remote_model": model.remote_model,
        "type": model.remote_type,
        "price": None if price is None else price.per_million(),
        "context_length": describe.context_length(model),
        "fallbacks": ", ".join(model.fallbacks or []),
        "has_key": bool(model.api_key),
        "parent": model.parent_model,
    }


def _form_of(model):
    """What the edit form starts from: everything but the API key."""
    price = prices.of(model)
    shown = price.per_million() if price is not None else {}
    return {
        "name": model.name,
        "from": model.remote_model,
        # As clients see it (query values as ***): saved unchanged, the
        # stored URL is kept (_spec_of), so a key in it never reaches a page.
        "remote_host": shown_url(model.remote_host),
        "remote_type": model.remote_type,
        "price_input": shown.get("input", ""),
        "price_output": shown.get("output", ""),
        "context_length": model.context_length or "",
        "fallbacks": ", ".join(model.fallbacks or []),
    }


@bp.get("/models")
@admin_page
def models():
    editing = request.args.get("edit")
    form = {"remote_type": "openai"}
    if editing:
        form = _form_of(registry.resolve(editing))
    return render_template(
        "console/models.html",
        models=[_row(m) for m in registry.all_models()],
        form=form,
        editing=editing,
    )


def _spec_of(form):
    spec = {
        "name": text(form, "name"),
        "from": text(form, "from"),
        "remote_host": text(form, "remote_host"),
        "remote_type": text(form, "remote_type") or "openai",
        "stream": False,
    }
    key = form.get("remote_api_key", "")
    if key:
        spec["remote_api_key"] = key
    price_input, price_output = text(form, "price_input"), text(form, "price_output")
    if price_input or price_output:
        spec["price"] = {"input": price_input, "output": price_output}
    context_length = number(form, "context_length")
    if context_length is not None:
        spec["context_length"] = context_length
    fallbacks = listed(form, "fallbacks")
    if fallbacks:
        spec["fallbacks"] = fallbacks
    return {k: v for k, v in spec.items() if v not in (None, "")}


def _kept_host(spec):
    """The stored remote_host when the form sent back the shown one."""
    name, host = spec.get("name"), spec.get("remote_host")
    if name and host and registry.exists(name):
        stored = registry.resolve(name).remote_host
        if host == shown_url(stored):
            spec["remote_host"] = stored
    return spec


@bp.post("/models")
@admin_page
def save_model():
    spec = load(_create, _kept_host(_spec_of(request.form)))
    replacing = registry.exists(spec["model"])
    model = registry.create(spec, keep_api_key=True)
    audit.record(
        g.caller.name,
        "model.replace" if replacing else "model.create",
        model.name,
        via="console",
        remote_host=model.remote_host,
        parent_model=model.parent_model,
        price=None if prices.of(model) is None else prices.of(model).per_million(),
    )
    return redirect(url_for("console.models"))


@bp.post("/models/copy")
@admin_page
def copy_model():
    spec = load(
        _copy,
        {"source": text(request.form, "source"), "destination": text(request.form, "destination")},
    )
    model = registry.copy(spec["source"], spec["destination"])
    audit.record(g.caller.name, "model.copy", model.name, via="console", source=spec["source"])
    return redirect(url_for("console.models"))


@bp.post("/models/delete")
@admin_page
def delete_model():
    name = text(request.form, "name")
    registry.delete(name)
    audit.record(g.caller.name, "model.delete", normalize_model_name(name), via="console")
    return redirect(url_for("console.models"))
