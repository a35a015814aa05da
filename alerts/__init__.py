"""Alerts: warning rules, the alert lifecycle, CAP 1.2, notification channels and escalation
(DESIGN §2, §5 "Alerts"). Its modules follow STYLE.md "A domain package's room"."""
