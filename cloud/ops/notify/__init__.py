"""Notifications: an outbox written in the same transaction as the change it announces, delivered
to the butler inbox (SSE, fanned out across processes by PostgreSQL LISTEN/NOTIFY), signed
webhooks, SMTP email and phone messengers (through apprise), each send recorded and retried."""
