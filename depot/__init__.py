"""Depot: the equipment catalogue, serialized items and bulk stock, bins, check-out and check-in,
inspections (DESIGN §2, §5 "Depot"). Its modules follow STYLE.md "A domain package's room"."""
