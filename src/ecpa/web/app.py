"""Mounting the web application on the FastAPI app: sessions, static files, pages, and
HTML error pages for the web routes (the API keeps its JSON errors)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware

from ..config import get_settings


class WebSessionMiddleware(SessionMiddleware):
    """Signed-cookie sessions for the web pages only: the API signs in with bearer tokens,
    so its requests skip the cookie work (a busy API answers many per second)."""

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        return await super().__call__(scope, receive, send)


def mount(app: FastAPI) -> None:
    from . import pages
    secret = get_settings().secret_key or "ecpa-development-only"
    # Cheap phones on slow connections: compress what is worth compressing.
    app.add_middleware(GZipMiddleware, minimum_size=800)
    app.add_middleware(WebSessionMiddleware, secret_key=secret, session_cookie="ecpa_session",
                       max_age=12 * 3600, same_site="lax", https_only=False)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(pages.router)
    from . import dashboard; app.include_router(dashboard.router)  # noqa: E702
    from . import guidance, reports, targeting
    app.include_router(targeting.router)
    app.include_router(reports.router)
    app.include_router(guidance.router)
    from . import cooperative, station, village
    app.include_router(village.router)
    app.include_router(station.router)
    app.include_router(cooperative.router)
    from . import shop; app.include_router(shop.router)


def wants_html(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(("/api/", "/docs", "/openapi")) and "json" not in request.headers.get("accept", "")


def error_page(request: Request, status: int, message: str):
    from .render import render
    return render(request, "error.html", status=status, message=message)
