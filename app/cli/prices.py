"""`ollama-relay prices load FILE`: reprice many models at once."""

import json

import click
import yaml
from flask.cli import AppGroup

from app.catalog import registry
from app.cli.common import CommandFailed, audit_cli, require_current_schema
from app.errors import RelayError
from app.spend import prices


@click.group("prices", cls=AppGroup)
def prices_group():
    """Model prices per million tokens, in RELAY_CURRENCY."""


def _read(path):
    """{model name: price spec} from a JSON or YAML file (YAML reads JSON too)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"not valid JSON or YAML: {exc}", param_hint="FILE") from None
    if not isinstance(data, dict) or not data:
        raise click.BadParameter(
            'must map model names to prices: {"model": {"input": 0.4, "output": 1.6}}',
            param_hint="FILE",
        )
    return data


@prices_group.command("load")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
def prices_load(path):
    """Set the price of every model FILE names; all or none."""
    parsed = {}
    for name, spec in _read(path).items():
        try:
            parsed[str(name)] = prices.parse(spec)
        except prices.PriceError as exc:
            raise click.BadParameter(f"{name}: {exc}", param_hint="FILE") from None
    require_current_schema()
    try:
        names = registry.set_prices(parsed)
    except RelayError as exc:
        raise CommandFailed(f"{exc.message}; no price was changed") from None
    for given, price in parsed.items():
        audit_cli("model.price", given, price=price.per_million(), via_file=path)
    click.echo(f"priced {len(names)} models")
