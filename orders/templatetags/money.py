"""``{{ order.total|amount:order.currency }}``: an amount in its currency's decimals."""

from __future__ import annotations

from typing import Any

from django import template

from orders.models import money_text

register = template.Library()


@register.filter
def amount(value: Any, currency: str) -> str:
    return money_text(value, currency)
