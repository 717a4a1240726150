"""Interface text through gettext catalogs (zh_CN; English is the source language).
The catalogs are .po files read with Babel when the application starts, so no compiled
file needs to be kept beside them.  The language comes from the `lang` cookie (the
switch on every page) or the browser's Accept-Language."""

from __future__ import annotations

import gettext
import io
from contextvars import ContextVar
from functools import lru_cache
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("zh_CN", "en")
DEFAULT = "zh_CN"  # the users are Chinese counties and consumers

_current: ContextVar[gettext.NullTranslations] = ContextVar("translations")


@lru_cache(maxsize=None)
def translations(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    # Every .po file of the language is read into one catalog: each part of the web
    # application keeps its own file (messages.po, shop.po, dashboard.po …).
    folder = resources.files(__package__).joinpath(f"locale/{lang}/LC_MESSAGES")
    catalog = None
    for po in sorted((f for f in folder.iterdir() if f.name.endswith(".po")), key=lambda f: f.name):
        part = read_po(io.StringIO(po.read_text(encoding="utf-8")), locale=lang)
        if catalog is None:
            catalog = part
        else:
            for message in part:
                if message.id:
                    catalog[message.id] = message
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def choose(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


def activate(lang: str) -> None:
    _current.set(translations(lang))


def gettext_(message: str) -> str:
    return _current.get(translations(DEFAULT)).gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return _current.get(translations(DEFAULT)).ngettext(singular, plural, n)
