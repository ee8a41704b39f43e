"""Validators shared by models and API serializers (one copy of each rule)."""

from django.core.validators import RegexValidator

E164_PATTERN = r"^\+[1-9]\d{6,14}$"
e164_phone = RegexValidator(E164_PATTERN, "An E.164 phone number, e.g. +358401234567.")
