"""Spend in money: prices, the cost of a request, and budgets."""
