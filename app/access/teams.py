"""Teams: groups of client keys that share a model list and rate limits.

A key in a team may use the models both lists allow (null: every model), and
its requests count against its own rpm/tpm and against the team's, which all
its keys share across workers and hosts (app/access/limits.py). A team is
referred to by name; it cannot be deleted while keys belong to it. Changes
reach every worker as key changes do (the `keys` change counter).
"""

from dataclasses import dataclass

from app.access import audit, names
from app.catalog.names import normalize_model_name
from app.errors import RelayError
from app.spend import money
from app.spend.budgets import Budget
from app.storage import changes
from app.storage.db import write_transaction
from app.storage.models import ClientKey, Team, utcnow

# Fields an update may change, as the API names them.
FIELDS = ("models", "rpm", "tpm", "budget", "period")


def budget_of(scope, row):
    """The Budget a key or team row sets, or None."""
    if row.budget is None or row.period is None:
        return None
    return Budget(scope, row.name, row.budget, row.period)


def budget_columns(spec, row=None):
    """budget (an amount, in pico-units) and period from a loaded payload:
    both or neither (null budget: none); the row's when not given."""
    given = {f: spec[f] for f in ("budget", "period") if f in spec}
    if not given:
        return {}
    budget = given.get("budget", row.budget if row else None)
    period = given.get("period", row.period if row else None)
    if "budget" in given and given["budget"] is None:
        return {"budget": None, "period": None}
    if budget is None or period is None:
        missing = "period" if period is None else "budget"
        raise RelayError(
            f"{missing}: required with a budget (day, month or total)", status=400, param=missing
        )
    return {"budget": budget, "period": period}


class TeamProblem(RelayError):
    """A team cannot be created, changed or deleted as asked; `param` names why."""

    def __init__(self, message, field="name", status=400):
        super().__init__(message, status=status, param=field)


@dataclass(frozen=True)
class TeamRecord:
    """What a worker needs to know of a team on every request."""

    name: str
    models: frozenset  # None: every model
    rpm: int
    tpm: int
    budget: Budget = None

    def may_use(self, model_name):
        return self.models is None or model_name in self.models

    @classmethod
    def of(cls, row):
        models = None if row.models is None else frozenset(row.models)
        return cls(row.name, models, row.rpm, row.tpm, budget_of("team", row))


def _models(names):
    return None if names is None else sorted({normalize_model_name(m) for m in names})


def _changed():
    changes.bump("keys")


def find(name):
    row = Team.get_or_none(Team.name == name)
    if row is None:
        raise TeamProblem(f"team '{name}' not found", status=404)
    return row


def create(spec, actor, via):
    """Create a team from a loaded CreateTeamSchema payload; its description."""
    if not names.valid(spec["name"]):
        raise TeamProblem(f"name must be {names.RULE}")
    with write_transaction():
        if Team.get_or_none(Team.name == spec["name"]) is not None:
            raise TeamProblem(f"a team named '{spec['name']}' exists", status=409)
        row = Team.create(
            name=spec["name"],
            models=_models(spec.get("models")),
            rpm=spec.get("rpm"),
            tpm=spec.get("tpm"),
            created_at=utcnow(),
            **budget_columns(spec),
        )
        _changed()
    changes.announce("keys")
    audit.record(actor, "team.create", row.name, via=via, **_details(row))
    return describe(row)


def update(spec, actor, via):
    """Change the fields `spec` names (a loaded UpdateTeamSchema payload)."""
    given = {field: spec[field] for field in FIELDS if field in spec}
    if "models" in given:
        given["models"] = _models(given["models"])
    with write_transaction():
        row = find(spec["name"])
        given.update(budget_columns(spec, row))
        if given:
            Team.update(**given).where(Team.id == row.id).execute()
            _changed()
        row = find(spec["name"])
    changes.announce("keys")
    audit.record(actor, "team.update", row.name, via=via, **_details(row))
    return describe(row)


def delete(name, actor, via):
    with write_transaction():
        row = find(name)
        members = ClientKey.select().where(ClientKey.team == name).count()
        if members:
            raise TeamProblem(
                f"team '{name}' still has {members} keys (revoked ones included): move or "
                "delete them first",
                status=409,
            )
        row.delete_instance()
        _changed()
    changes.announce("keys")
    audit.record(actor, "team.delete", name, via=via)


def all_teams():
    return list(Team.select().order_by(Team.name))


def _details(row):
    budget = None if row.budget is None else money.exact(row.budget)
    return {
        "models": row.models,
        "rpm": row.rpm,
        "tpm": row.tpm,
        "budget": budget,
        "period": row.period,
    }


def describe(row):
    return {
        "name": row.name,
        **_details(row),
        "created_at": row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
