"""Webhook events, pure: the catalog, payloads, Standard Webhooks signatures, target addresses.

Standard library only: no I/O, no clock (times are passed in), no randomness (secrets and
jitter come from the caller).
"""
