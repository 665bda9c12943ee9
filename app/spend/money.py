"""Amounts of money as integers of pico-units (10^-12 of the deployment's
currency, RELAY_CURRENCY): sums are exact, and a database column of either
SQLite or PostgreSQL holds them as a plain 64-bit integer.

A price per million tokens with at most six decimal places is a whole number
of pico-units per token, so the cost of any number of tokens is exact too.
"""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

PICO = 10**12
# A signed 64-bit column: the largest amount a usage row or a budget holds.
MAX_PICO = 2**63 - 1
MAX_AMOUNT = Decimal(MAX_PICO).scaleb(-12)
# Costs shown to people (the CLI's tables) are rounded half to even to this
# many places; JSON, CSV and the database keep the exact value.
DISPLAY_PLACES = 6


class MoneyError(ValueError):
    """An amount that is not a number, negative, too precise or too large."""


def to_pico(amount, places=12):
    """`amount` (a Decimal, int or numeric string) as pico-units, exactly."""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise MoneyError("must be a number") from None
    if not value.is_finite() or isinstance(amount, bool):
        raise MoneyError("must be a number")
    if value < 0:
        raise MoneyError("must not be negative")
    if value.as_tuple().exponent < -places and value != value.quantize(Decimal(1).scaleb(-places)):
        raise MoneyError(f"must have at most {places} decimal places")
    if value > MAX_AMOUNT:
        raise MoneyError(f"must be at most {MAX_AMOUNT}")
    return int(value.scaleb(12))


def from_pico(pico):
    """pico-units as an exact Decimal, without trailing zeros (0.0000044)."""
    value = Decimal(int(pico)).scaleb(-12)
    return value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize()


def exact(pico):
    """The exact amount as text, never in exponent form ("0.0000044")."""
    return format(from_pico(pico), "f")


def shown(pico):
    """The amount as the CLI shows it: DISPLAY_PLACES places, half to even."""
    step = Decimal(1).scaleb(-DISPLAY_PLACES)
    return format(Decimal(int(pico)).scaleb(-12).quantize(step, ROUND_HALF_EVEN), "f")
