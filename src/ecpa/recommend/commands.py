"""`ecpa recommend`: which e-commerce poverty alleviation model suits a county."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..cli import _actor, _fail, console
from ..errors import EcpaError


def recommend(
    county: Annotated[str | None, typer.Argument(help="a county code whose profile is in the database")] = None,
    profile: Annotated[Path | None, typer.Option(help="a profile file (.json or .toml)")] = None,
    top: int = 3,
) -> None:
    """Rank the models of seed 001 Table I and the arrangements of seed 004 §3 for a county,
    with the reasons and the gaps to close first."""
    from .service import recommend as score
    from .service import recommend_county
    try:
        if profile:
            text = profile.read_text(encoding="utf-8")
            data = tomllib.loads(text) if profile.suffix == ".toml" else json.loads(text)
            result = score(data, top=top)
        elif county:
            from ..db import session_scope
            with session_scope() as s:
                result = recommend_county(s, _actor(), county, top)
        else:
            raise typer.BadParameter("give a county code or --profile FILE")
    except EcpaError as exc:
        _fail(exc)
    for group, title in (("models", "development model"), ("arrangements", "who organises")):
        t = Table("rank", title, "score", "because", "close first")
        for i, r in enumerate(result[group], 1):
            t.add_row(str(i), f"{r['name']} ({r['source']})", f"{r['score']:.2f}",
                      ", ".join(x["need"] for x in r["reasons"][:3]),
                      ", ".join(("!" if x["required"] else "") + x["need"] for x in r["gaps"][:3]))
        console.print(t)
    console.print(result["note"])
