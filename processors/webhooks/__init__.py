"""Webhooks: batch endings delivered to configured URLs, signed per Standard Webhooks."""
