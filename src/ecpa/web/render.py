"""Rendering: one Jinja2 environment, the interface language per request, the signed-in
user and the CSRF token in every template."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..money import yuan as money_yuan
from . import i18n
from .security import csrf_token

env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                  autoescape=select_autoescape(["html"]), extensions=["jinja2.ext.i18n"],
                  trim_blocks=True, lstrip_blocks=True)
env.install_gettext_callables(i18n.gettext_, i18n.ngettext_, newstyle=True)


def yuan(fen: int | None) -> str:
    if fen is None:
        return "–"
    text = money_yuan(fen)
    return f"-¥{text[1:]}" if text.startswith("-") else f"¥{text}"


env.filters["yuan"] = yuan


def language(request: Request) -> str:
    return i18n.choose(request.cookies.get("lang"), request.headers.get("accept-language"))


def render(request: Request, template: str, status: int = 200, **ctx) -> HTMLResponse:
    lang = language(request)
    i18n.activate(lang)
    html = env.get_template(template).render(
        request=request, lang=lang, csrf=csrf_token(request), actor=ctx.pop("actor", None),
        **ctx)
    return HTMLResponse(html, status_code=status)
