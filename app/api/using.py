"""The models a request may see and use: the registry, seen through the caller's key."""
from app import access, registry


def model_to_use(name):
    """The model `name`, for a request that calls its remote: the key must
    allow the model, and the call counts against the key's rate limits."""
    access.permit_model(name)
    access.admit()
    return registry.resolve(name)


def model_to_show(name):
    access.permit_model(name)
    return registry.resolve(name)


def visible_models():
    who = access.caller()
    return [model for model in registry.all_models() if who.may_use(model.name)]
