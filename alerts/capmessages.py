"""An alert's CAP 1.2 messages from its row: the texts in both languages, one area per affected
village with its polygon, references to the previous message (alerts.cap writes the XML)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts import cap
from alerts.choices import LABELS, LEVEL_LABELS, AlertKind
from alerts.models import Alert, AlertMessage
from maps.models import Village

# CAP info languages (RFC 5646) and the hub's locale for each.
LANGUAGES = (("zh-CN", "zh_Hans_CN"), ("en-US", "en"))


@dataclass(frozen=True)
class Built:
    """A message's identifier and XML."""

    identifier: str
    xml: bytes


def public_url() -> str:
    """Where the hub is reached from outside (links in CAP and the Atom feed)."""
    settings = current_app.config["SETTINGS"]
    if settings.alerts.public_url:
        return settings.alerts.public_url.rstrip("/")
    return f"http://{settings.web.host}:{settings.web.port}"


def identifier(alert_id: int, n: int) -> str:
    """`{alerts.cap_sender}.{alert id}.{n}` (DESIGN §5)."""
    return f"{current_app.config['SETTINGS'].alerts.cap_sender}.{alert_id}.{n}"


def _areas(session: Session, codes: list[str]) -> tuple[cap.CapArea, ...]:
    areas = []
    for village in session.scalars(select(Village).where(Village.code.in_(codes))
                                   .order_by(Village.code)):
        shape = to_shape(village.boundary)
        polygons = getattr(shape, "geoms", [shape])
        rings = tuple(tuple((x, y) for x, y in p.exterior.coords) for p in polygons)
        name = f"{village.name_zh} {village.name_pinyin}".strip()
        areas.append(cap.CapArea(village.code, name, rings))
    return tuple(areas)


def _info(alert: Alert, language: str, locale: str, all_clear: bool, cancel: bool) -> cap.CapInfo:
    with force_locale(locale):
        kind = str(LABELS[AlertKind(alert.kind)])
        level = str(LEVEL_LABELS[(AlertKind(alert.kind), alert.level)])
        places = ", ".join(alert.villages or []) or alert.subject_code
        if cancel:
            headline = _("%(kind)s for %(subject)s withdrawn", kind=kind,
                         subject=alert.subject_name)
            instruction = _("The earlier warning was issued in error. No action is needed.")
        elif all_clear:
            headline = _("%(kind)s for %(subject)s: all clear", kind=kind,
                         subject=alert.subject_name)
            instruction = _("The danger has passed. Follow the village committee's "
                            "instructions before returning home.")
        else:
            headline = _("%(kind)s for %(subject)s: %(level)s", kind=kind,
                         subject=alert.subject_name, level=level)
            instruction = _INSTRUCTIONS.get(alert.level, _INSTRUCTIONS["default"])()
        description = _("%(level)s. Rule: %(source)s. Villages: %(places)s.", level=level,
                        source=(alert.rule or {}).get("source", ""), places=places)
        sender = _("Township emergency management office")
    return cap.CapInfo(language, kind, headline, description, instruction, sender)


_INSTRUCTIONS = {
    "evacuate": lambda: _("Leave now for your assigned shelter by the marked route; help "
                          "children, the elderly and the sick first."),
    "prepare": lambda: _("Prepare to evacuate: pack documents, medicine and water, and be "
                         "ready to leave when told."),
    "alarm": lambda: _("Leave the slope and the area below it now."),
    "warning": lambda: _("Prepare to leave the slope and the area below it."),
    "default": lambda: _("Follow the township's instructions and watch for further warnings."),
}


def build(session: Session, alert: Alert, n: int, msg_type: str, now: datetime, *,
          all_clear: bool = False) -> Built:
    """The alert's n-th CAP message."""
    settings = current_app.config["SETTINGS"]
    references = tuple(
        cap.CapReference(settings.alerts.cap_sender, m.identifier, m.sent_at)
        for m in session.scalars(select(AlertMessage).where(
            AlertMessage.alert_id == alert.id, AlertMessage.n == n - 1)))
    message = cap.CapMessage(
        sender=settings.alerts.cap_sender, identifier=identifier(alert.id, n), sent=now,
        msg_type=msg_type, status=settings.alerts.cap_status, kind=alert.kind,
        level=alert.level, all_clear=all_clear, references=references,
        infos=tuple(_info(alert, language, locale, all_clear, msg_type == "Cancel")
                    for language, locale in LANGUAGES),
        areas=_areas(session, list(alert.villages or [])),
        web=f"{public_url()}/alerts/{alert.id}",
        note=alert.close_reason or None)
    return Built(message.identifier, cap.cap_xml(message))
