"""The FastAPI application."""

from __future__ import annotations

from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from .. import __version__
from ..config import get_settings
from ..errors import EcpaError


def create_app() -> FastAPI:
    from ..campaigns.api import router as campaigns_router
    from ..cases.api import public_router as cases_public_router
    from ..cases.api import router as cases_router
    from ..cooperatives.api import router as cooperatives_router
    from ..grievances.api import router as grievances_router
    from ..ledger.api import router as ledger_router
    from ..livelihoods.api import router as livelihoods_router
    from ..market.api import router as market_router
    from ..measure.api import router as measure_router
    from ..people.api import router as people_router
    from ..programs.api import loans_router
    from ..programs.api import router as programs_router
    from ..regions.api import router as regions_router
    from ..registry.api import router as registry_router
    from ..stations.api import router as stations_router
    from ..trace.api import public_router as trace_public_router
    from ..trace.api import router as trace_router

    lanes: dict = {}  # filled while the application runs (its lifespan)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Fewer threads for the synchronous routes than AnyIO's 40: on a few cores more
        # threads only fight over the GIL (measured: benchmarks/checkout_http.py).
        settings = get_settings()
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        if settings.checkout_fast_lane and settings.database_url.startswith("postgresql"):
            from ..market.fastlane import FastLane
            lanes["checkout"] = FastLane(settings.database_url,
                                          settings.checkout_lane_connections,
                                          settings.checkout_lane_wait_for_flush)
            await lanes["checkout"].open()
        try:
            yield
        finally:
            lane = lanes.pop("checkout", None)
            if lane is not None:
                await lane.close()

    app = FastAPI(
        lifespan=lifespan,
        title="ECPA",
        version=__version__,
        description="E-commerce poverty alleviation: regions, the registry of poor households.",
    )

    from .idempotency import IdempotencyMiddleware
    app.add_middleware(IdempotencyMiddleware)
    # Outside the Idempotency-Key middleware, inside gzip and the web session (mount):
    # the checkout's fast lane, opened by the lifespan on PostgreSQL.
    from ..market.api import CheckoutFastLane
    app.add_middleware(CheckoutFastLane, lanes=lanes)
    app.state.lanes = lanes

    from ..web.app import error_page, mount, wants_html

    @app.exception_handler(EcpaError)
    async def domain_error(request: Request, exc: EcpaError) -> JSONResponse:
        if wants_html(request):
            return error_page(request, exc.status, exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            {"error": exc.code, "message": exc.message, "detail": _jsonable(exc.detail)},
            status_code=exc.status, headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"],
             **({"value": _jsonable(e["input"])} if "input" in e and not isinstance(e["input"], dict) else {})}
            for e in exc.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse({"error": "invalid_input", "message": message, "detail": problems},
                            status_code=422)

    @app.exception_handler(IntegrityError)
    async def integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse({"error": "conflict",
                             "message": "the change conflicts with existing data",
                             "detail": {"constraint": str(exc.orig)[:200]}}, status_code=409)

    @app.get("/api/health", tags=["meta"])
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    app.include_router(people_router)
    app.include_router(regions_router)
    app.include_router(registry_router)
    from ..duplicates.api import router as duplicates_router
    app.include_router(duplicates_router)
    app.include_router(ledger_router)
    app.include_router(livelihoods_router)
    app.include_router(measure_router)
    from ..quality.api import router as quality_router
    app.include_router(quality_router)
    app.include_router(market_router)
    app.include_router(cases_router)
    from ..guidance.api import router as guidance_router
    from ..recommend.api import router as recommend_router
    from ..reports.api import router as reports_router
    app.include_router(guidance_router)
    app.include_router(reports_router)
    app.include_router(recommend_router)
    app.include_router(cases_public_router)
    app.include_router(campaigns_router)
    app.include_router(programs_router)
    app.include_router(loans_router)
    app.include_router(cooperatives_router)
    app.include_router(stations_router)
    app.include_router(grievances_router)
    from ..advice.api import router as advice_router
    app.include_router(advice_router)
    from ..evaluate.api import router as evaluate_router
    app.include_router(evaluate_router)
    app.include_router(trace_router)
    app.include_router(trace_public_router)
    # The web pages last: their routes have no common prefix, and an API request should
    # not be tried against each of them first.
    mount(app)
    return app


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)
