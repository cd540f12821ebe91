"""Forms for the orders pages: the list filters and the add-shipment form."""

from __future__ import annotations

from typing import Any

from django import forms

from orders.models import Order

FLAG_CHOICES = [
    ("", "Any"),
    ("total_mismatch", "Totals do not add up"),
    ("unknown_sku", "Unknown SKU"),
    ("held_unmapped_status", "Held: unmapped status"),
]

#: What Storelink's shipments cover, as the orders list filters it (see ``orders.views``).
SHIPPING_CHOICES = [
    ("", "Any"),
    ("unshipped", "Not shipped"),
    ("partial", "Partially shipped"),
    ("shipped", "Shipped"),
]


class OrderFilterForm(forms.Form):
    channel = forms.ChoiceField(required=False, label="Channel")
    #: The status as the store names it ("Paid") or its code ("2"); the list suggests the names.
    status = forms.CharField(
        required=False,
        label="Store status",
        max_length=100,
        widget=forms.TextInput(attrs={"list": "status-names", "autocomplete": "off"}),
    )
    placed_from = forms.DateField(
        required=False, label="Placed from", widget=forms.DateInput(attrs={"type": "date"})
    )
    placed_to = forms.DateField(
        required=False, label="Placed until", widget=forms.DateInput(attrs={"type": "date"})
    )
    shipping = forms.ChoiceField(required=False, label="Shipping", choices=SHIPPING_CHOICES)
    flag = forms.ChoiceField(required=False, label="Flag", choices=FLAG_CHOICES)
    q = forms.CharField(required=False, label="Order number or customer", max_length=100)

    def __init__(self, *args: Any, channels: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", "All channels"), *channels]


class ShipmentForm(forms.Form):
    """Lines and quantities (one number field per order line), carrier, tracking numbers.

    Quantities default to what is still unshipped, so "ship everything" is one click; the service
    checks them again under a row lock.
    """

    carrier = forms.CharField(
        required=False, max_length=100, label="Carrier", help_text="e.g. UPS, DHL, Royal Mail"
    )
    service = forms.CharField(required=False, max_length=100, label="Service")
    tracking_numbers = forms.CharField(
        label="Tracking numbers",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One per line (or separated by commas).",
    )

    def __init__(self, *args: Any, order: Order, remaining: dict[str, int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = order
        self.line_fields: list[tuple[str, Any]] = []
        for line in order.lines.all():
            name = f"qty_{line.pk}"
            left = max(0, remaining.get(line.external_line_id, 0))
            self.fields[name] = forms.IntegerField(
                min_value=0,
                max_value=left,
                initial=left,
                required=False,
                label=f"{line.sku or line.name} — {line.name}",
                help_text=f"{left} of {line.quantity} left to ship",
            )
            self.line_fields.append((name, line))

    def bound_line_fields(self) -> list[tuple[Any, Any]]:
        return [(self[name], line) for name, line in self.line_fields]

    def shipment_lines(self) -> list[dict[str, Any]]:
        lines = []
        for name, line in self.line_fields:
            quantity = self.cleaned_data.get(name) or 0
            if quantity:
                lines.append({"external_line_id": line.external_line_id, "quantity": quantity})
        return lines

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.line_fields and not any(cleaned.get(name) for name, _ in self.line_fields):
            raise forms.ValidationError("Enter a quantity for at least one line.")
        return cleaned
