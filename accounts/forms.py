"""Seller-facing account forms: sign up, log in (with the throttle's message), password reset, API keys.

The forms only shape input; the rules (password strength, unique e-mail, who may create keys) live
in :mod:`accounts.services`, whose per-field errors are mapped back onto these fields.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts.throttle import Block, login_block
from accounts.zones import time_zone_names


class SignUpForm(forms.Form):
    """Step one of sign-up: who you are. The password is chosen from the link e-mailed to you."""

    account_name = forms.CharField(
        label="Company or shop name",
        max_length=150,
        help_text="Your seller account; your sales channels and orders belong to it.",
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )
    email = forms.EmailField(
        label="E-mail address",
        max_length=254,
        help_text="We send a link to this address; you choose your password from there.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def add_service_errors(self, error: ValidationError) -> None:
        """Put the service's per-field messages next to the matching fields."""
        if hasattr(error, "error_dict"):
            for field, messages in error.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        else:
            self.add_error(None, error.messages)


class SignUpPasswordForm(forms.Form):
    """Step two of sign-up, reached from the e-mailed link: the password.

    ``time_zone`` is filled in by static/js/timezone.js with the browser's zone, the account's
    starting zone; without JavaScript it stays empty and the account starts in UTC.
    """

    time_zone = forms.CharField(
        required=False,
        widget=forms.HiddenInput(attrs={"data-browser-time-zone": ""}),
    )

    password = forms.CharField(
        label="Password",
        strip=False,
        help_text="At least 10 characters; not a common password.",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    password_confirm = forms.CharField(
        label="Repeat the password",
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        password, confirm = cleaned.get("password"), cleaned.get("password_confirm")
        if password and confirm and password != confirm:
            self.add_error("password_confirm", "The two passwords are not the same.")
        return cleaned

    def add_service_errors(self, error: ValidationError) -> None:
        """Put the service's per-field messages next to the matching fields."""
        if hasattr(error, "error_dict"):
            for field, messages in error.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        else:
            self.add_error(None, error.messages)


class LoginForm(AuthenticationForm):
    """Django's login form, labelled for e-mail, and honest when the throttle blocks a login."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That e-mail address and password do not match an account.",
        "throttled": "Too many failed log-ins for this e-mail address. Wait a few minutes and try again.",
        "throttled_client": "Too many failed log-ins from your network. Wait a few minutes and try again.",
    }

    def __init__(self, request: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = "E-mail address"
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "autofocus": True})

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        block = login_block(self.request, email) if email else None
        if block is Block.CLIENT:
            raise ValidationError(self.error_messages["throttled_client"], code="throttled_client")
        if block is Block.ACCOUNT:
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        return super().clean()


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form (it e-mails only addresses that have an active account, and answers the
    same either way), labelled like the rest of Storelink."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].label = "E-mail address"


class SetPasswordForm(auth_forms.SetPasswordForm):
    """Django's new-password form with Storelink's labels and a plain-text rule."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = "New password"
        self.fields["new_password1"].help_text = "At least 10 characters; not a common password."
        self.fields["new_password2"].label = "Repeat the new password"


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What will use this key, e.g. 'Warehouse WMS'. Only you see the name.",
    )


class AccountSettingsForm(forms.Form):
    """The account's own settings; for now the zone its times are shown in."""

    time_zone = forms.ChoiceField(
        label="Time zone",
        help_text="Every time is shown in this zone, and dates you type in filters are days in it.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(name, name.replace("_", " ")) for name in time_zone_names()]

    def add_service_errors(self, error: ValidationError) -> None:
        """Put the service's per-field messages next to the matching fields."""
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)
