"""The ``ecpa`` command line.  Thin: it parses options, opens a session and calls the
use-case functions of the domain packages, as the local operator (audited as
``cli:<user>``)."""

from __future__ import annotations

import getpass
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import EcpaError

app = typer.Typer(help="ECPA: the e-commerce poverty alleviation platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
regions_app = typer.Typer(help="Regions: provinces down to villages.", no_args_is_help=True)
registry_app = typer.Typer(help="The registry of poor households.", no_args_is_help=True)
users_app = typer.Typer(help="Users, roles and region scopes.", no_args_is_help=True)
measure_app = typer.Typer(help="Poverty measurement: lines and profiles.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(regions_app, name="regions")
app.add_typer(registry_app, name="registry")
app.add_typer(users_app, name="users")
app.add_typer(measure_app, name="measure")
livelihoods_app = typer.Typer(help="Training, entrepreneurship and employment of household members.", no_args_is_help=True)
app.add_typer(livelihoods_app, name="livelihoods")
coop_app = typer.Typer(help="Cooperatives: members, wages, dividends (seed 004 §3).", no_args_is_help=True)
app.add_typer(coop_app, name="coop")
stations_app = typer.Typer(help="Service stations and delivery zones (county / township / village).", no_args_is_help=True)
app.add_typer(stations_app, name="stations")
duplicates_app = typer.Typer(help="Duplicate households: detection and adjudication.", no_args_is_help=True)
app.add_typer(duplicates_app, name="duplicates")
grievances_app = typer.Typer(help="Grievances: queues by region, escalation of overdue ones.", no_args_is_help=True)
app.add_typer(grievances_app, name="grievances")

console = Console()
err = Console(stderr=True)


def _actor():
    from .people.access import system_actor
    return system_actor(f"cli:{getpass.getuser()}")


def _fail(exc: EcpaError) -> None:
    err.print(f"[red]error:[/red] {exc.message}")
    raise typer.Exit(2)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=False)


@app.command()
def init(database_url: Annotated[Optional[str], typer.Option(help="database URL to write into ecpa.toml")] = None,
         provinces: Annotated[Optional[str], typer.Option(help="comma-separated province codes to load (default: all)")] = None) -> None:
    """Write ecpa.toml (with a fresh secret key) if missing, create the schema and load
    the official provinces, prefectures and counties."""
    from .config import get_settings, write_default_config
    from .db import session_scope, upgrade
    from .regions.service import load_official

    if not get_settings().secret_key:
        path = write_default_config(database_url=database_url)
        console.print(f"wrote {path} with a new secret key")
    upgrade()
    with session_scope() as s:
        n = load_official(s, set(provinces.split(",")) if provinces else None)
    console.print(f"schema ready; {n} official regions added")


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Create or upgrade the schema (Alembic migrations)."""
    from .db import current_revision, upgrade
    upgrade(revision=revision)
    console.print(f"database at revision {current_revision()}")


@regions_app.command("load-official")
def regions_load_official(provinces: Annotated[Optional[str], typer.Option(help="comma-separated province codes")] = None) -> None:
    """Load the official GB/T 2260 provinces, prefectures and counties."""
    from .db import session_scope
    from .regions.service import load_official
    with session_scope() as s:
        n = load_official(s, set(provinces.split(",")) if provinces else None)
    console.print(f"{n} regions added")


@regions_app.command("import")
def regions_import(file: Path) -> None:
    """Import regions (townships, villages) from CSV: code,name,parent_code,is_poor."""
    from .db import session_scope
    from .regions.service import import_regions_csv
    try:
        with session_scope() as s:
            n, errors = import_regions_csv(s, _actor(), file.read_text(encoding="utf-8-sig"))
            if errors:
                for e in errors[:50]:
                    err.print(f"  {e}")
                err.print(f"[red]{len(errors)} bad row(s); nothing written[/red]")
                raise typer.Exit(1)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"{n} regions imported")


@regions_app.command("show")
def regions_show(code: str) -> None:
    """Show a region and its children."""
    from .db import session_scope
    from .regions.service import children, get_region
    try:
        with session_scope() as s:
            r = get_region(s, code)
            console.print(f"{r.code} {r.name} ({r.level.value}){' poor' if r.is_poor else ''}")
            for c in children(s, code):
                console.print(f"  {c.code} {c.name}{' [poor]' if c.is_poor else ''}")
    except EcpaError as exc:
        _fail(exc)


@regions_app.command("flag-poor")
def regions_flag_poor(code: str, unset: bool = False) -> None:
    """Flag a county or village as poor (or --unset)."""
    from .db import session_scope
    from .regions.service import set_poor
    try:
        with session_scope() as s:
            set_poor(s, _actor(), code, not unset)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"{code}: poor={'no' if unset else 'yes'}")


@users_app.command("add")
def users_add(username: str, role: str, region: Annotated[Optional[str], typer.Option()] = None,
              password: Annotated[Optional[str], typer.Option(help="prompted when not given")] = None) -> None:
    """Add a user with a role and region scope."""
    from .db import session_scope
    from .people.models import Role
    from .people.service import create_user
    try:
        role_v = Role(role)
    except ValueError:
        err.print(f"[red]error:[/red] unknown role {role!r}; one of: {', '.join(r.value for r in Role)}")
        raise typer.Exit(2)
    pw = password or typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope() as s:
            create_user(s, _actor(), username, pw, role_v, region)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"user {username} ({role}) added")


@registry_app.command("columns")
def registry_columns() -> None:
    """List the columns of a register file (English and Chinese headers)."""
    from .registry.columns import COLUMNS
    t = Table("column", "Chinese headers", "level", "kind", "required", "values / notes")
    for c in COLUMNS:
        notes = ", ".join(m.value for m in c.enum) if c.enum else c.help
        t.add_row(c.key, " / ".join(c.chinese), c.level, c.kind, "yes" if c.required else "", notes)
    console.print(t)


@registry_app.command("import")
def registry_import(
    file: Path,
    partial: Annotated[bool, typer.Option("--partial", help="write the households whose rows are all good")] = False,
) -> None:
    """Import a household register (CSV or XLSX).  Every row is checked first; bad rows
    are listed here and in FILE.errors.csv; by default nothing is written if any is bad."""
    from .db import session_scope
    from .registry.importer import import_register

    try:
        with _progress() as prog, session_scope() as s:
            tasks: dict[str, int] = {}

            def on_progress(stage: str, done: int, total: int | None) -> None:
                label = {"check": "checking rows", "write": "writing"}[stage]
                if stage not in tasks:
                    tasks[stage] = prog.add_task(label, total=total)
                prog.update(tasks[stage], completed=done, total=total)

            result = import_register(s, _actor(), file, partial=partial, progress=on_progress)
    except EcpaError as exc:
        _fail(exc)
    if result.unknown_columns:
        err.print(f"[yellow]ignored unknown column(s):[/yellow] {', '.join(result.unknown_columns)}")
    for e in result.errors[:30]:
        err.print(f"  {e}")
    if result.error_count > 30:
        err.print(f"  ... {result.error_count - 30} more")
    if result.error_file:
        err.print(f"error report: {result.error_file}")
    if result.error_count and not partial:
        err.print(f"[red]{result.error_count} error(s) in {result.rows} rows: nothing written[/red]")
        raise typer.Exit(1)
    console.print(
        f"{result.rows} rows, {result.households} households: "
        f"{result.households_created} created, {result.households_updated} updated, "
        f"{result.households_unchanged} unchanged, {result.households_skipped} skipped (bad rows); "
        f"members {result.members_created} created, {result.members_updated} updated, "
        f"{result.members_unchanged} unchanged; {result.status_events} status events"
    )
    if result.error_count:
        raise typer.Exit(1)


@registry_app.command("export")
def registry_export(
    out: Path,
    format: Annotated[Optional[str], typer.Option("--format", help="csv, xlsx or parquet (a directory)")] = None,
    region: Annotated[Optional[str], typer.Option(help="only households under this region code")] = None,
    reveal: Annotated[bool, typer.Option(help="full ID and phone numbers (re-importable); audited")] = False,
) -> None:
    """Export the registry: CSV/XLSX in the import format, or the de-identified Parquet layout."""
    from .db import session_scope
    from .registry.exporter import export_registry
    try:
        with session_scope() as s:
            info = export_registry(s, _actor(), out, format, region, reveal)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"wrote {info['rows']} {'households' if info['format'] == 'parquet' else 'rows'} to {out}")


@registry_app.command("find")
def registry_find(
    region: Annotated[Optional[str], typer.Option()] = None,
    status: Annotated[Optional[str], typer.Option()] = None,
    name: Annotated[Optional[str], typer.Option(help="member name prefix")] = None,
    id_number: Annotated[Optional[str], typer.Option()] = None,
    number: Annotated[Optional[str], typer.Option(help="household number")] = None,
    page: int = 1, page_size: int = 30,
) -> None:
    """Look households up."""
    from .db import session_scope
    from .registry.models import Status
    from .registry.service import HouseholdFilter, list_households
    try:
        st = Status(status) if status else None
    except ValueError:
        err.print(f"[red]error:[/red] unknown status {status!r}; one of: {', '.join(s.value for s in Status)}")
        raise typer.Exit(2)
    try:
        with session_scope() as s:
            total, items = list_households(s, _actor(), HouseholdFilter(region, st, number, name, id_number),
                                           page, page_size)
    except EcpaError as exc:
        _fail(exc)
    t = Table("id", "number", "village", "head", "size", "status")
    for i in items:
        t.add_row(str(i["id"]), i["number"], i["village_name"], i["head_name"] or "", str(i["size"]),
                  i["status"] or "")
    console.print(t)
    console.print(f"{total} household(s); page {page}")


def _household_id(s, number: str) -> int:
    from sqlalchemy import select
    from .errors import NotFound
    from .registry.models import Household
    hid = s.scalar(select(Household.id).where(Household.number == number))
    if hid is None:
        raise NotFound(f"no household number {number}")
    return hid


@registry_app.command("show")
def registry_show(number: str, reveal: bool = False) -> None:
    """Show one household's record (masked unless --reveal)."""
    import json
    from .db import session_scope
    from .registry.service import get_household
    try:
        with session_scope() as s:
            view = get_household(s, _actor(), _household_id(s, number), reveal)
    except EcpaError as exc:
        _fail(exc)
    console.print_json(json.dumps(view, ensure_ascii=False))


@app.command()
def synth(
    out: Annotated[Optional[Path], typer.Option(help="register file to write (.csv or .xlsx)")] = None,
    regions_out: Annotated[Optional[Path], typer.Option(help="regions CSV of the county's townships and villages")] = None,
    parquet: Annotated[Optional[Path], typer.Option(help="directory: stream the columnar layout instead")] = None,
    households: int = 3000,
    seed: int = 1,
    county: str = "621221",
) -> None:
    """Generate a realistic synthetic county (reproducible from --seed), or stream
    millions of households to Parquet (--parquet DIR) for measurement benchmarks."""
    from .synth import stream_parquet, synth_county, write_regions, write_register
    if parquet:
        with _progress() as prog:
            task = prog.add_task("households", total=households)
            stream_parquet(parquet, households, seed=seed, progress=lambda n: prog.update(task, completed=n))
        console.print(f"wrote {households} households to {parquet}/")
        return
    if not out:
        err.print("[red]error:[/red] give --out FILE.csv|.xlsx or --parquet DIR")
        raise typer.Exit(2)
    county_data = synth_county(seed=seed, county_code=county, households=households)
    write_register(county_data.rows, out)
    if regions_out:
        write_regions(county_data.regions, regions_out)
    console.print(f"wrote {len(county_data.rows)} member rows of {households} households of "
                  f"{county_data.county_name} to {out}")


@app.command()
def assess(
    input_dir: Annotated[Path, typer.Argument(help="folder of the Parquet layout (docs/registry-parquet.md)")],
    out: Annotated[Path, typer.Argument(help="output folder")],
    config: Annotated[Optional[Path], typer.Option(help="assessment configuration (.toml), see docs/measurement.md")] = None,
    year: Annotated[Optional[int], typer.Option(help="assessment year (overrides the configuration)")] = None,
    profile: Annotated[Optional[str], typer.Option(help="AF profile: china, global_mpi or a .toml path")] = None,
    k: Annotated[Optional[str], typer.Option(help="poverty cutoff(s), comma-separated, e.g. 1/3,1/2")] = None,
    compare_year: Annotated[Optional[int], typer.Option(help="also assess this earlier year and report changes")] = None,
    lines: Annotated[Optional[str], typer.Option(help="poverty lines for income poverty, comma-separated (see ecpa measure lines)")] = None,
    lines_file: Annotated[Optional[Path], typer.Option(help="CSV of your own lines (name, year, amount_yuan, source)")] = None,
    engine: Annotated[str, typer.Option(help="duckdb (default) or spark")] = "duckdb",
    memory_limit: Annotated[Optional[str], typer.Option(help="DuckDB memory limit, e.g. 8GB")] = None,
) -> None:
    """Assess a register (or a survey): income poverty, guarantees, the multidimensional
    index by region and subgroup, UNDP's county ranking and households at risk."""
    import time
    from .measure.assess import STEPS, assess as run
    from .measure.config import load_config
    started = time.perf_counter()
    try:
        cfg = load_config(config, year=year, profile=profile, compare_year=compare_year,
                          k=k.split(",") if k else None,
                          lines=lines.split(",") if lines else None,
                          lines_files=[str(lines_file)] if lines_file else None)
        with _progress() as prog:
            task = prog.add_task("assessing", total=len(STEPS))
            def step(name: str) -> None:
                prog.update(task, description=name,
                            completed=STEPS.index(name) if name in STEPS else None)
            result = run(input_dir, cfg, out, engine=engine, progress=step, memory_limit=memory_limit)
            prog.update(task, completed=len(STEPS), description="done")
    except EcpaError as exc:
        _fail(exc)
    total = result.mpi[(result.mpi["level"] == "total") & result.mpi["subgroup"].isna()]
    fgt = result.fgt[(result.fgt["level"] == "total") & result.fgt["subgroup"].isna()]
    t = Table(title=f"{result.households:,} households assessed in "
                    f"{time.perf_counter() - started:.1f} s ({engine})")
    for col in ("measure", "value"):
        t.add_column(col)
    for _, r in fgt.iterrows():
        t.add_row(f"headcount ratio, line {r['line']} ({r['line_yuan']:,.0f} yuan)",
                  f"{r['headcount_ratio']:.4f}")
    for _, r in total.iterrows():
        t.add_row(f"MPI k={r['k']:.3f}: H / A / M0", f"{r['H']:.4f} / {r['A']:.4f} / {r['M0']:.4f}")
        t.add_row("  driven by", str(r["drivers"]))
    t.add_row("households at risk (monitoring)", f"{result.monitoring_count:,}")
    if len(result.undp):
        t.add_row("most deprived county (UNDP index)",
                  f"{result.undp.iloc[0]['county_code']} (weakest: {result.undp.iloc[0]['weakest']})")
    console.print(t)
    console.print(f"results in {out}/ (households, mpi, fgt, guarantees, undp_counties, "
                  "monitoring: .parquet/.csv; summary.xlsx)")


@measure_app.command("lines")
def measure_lines(
    year: Annotated[Optional[int], typer.Option(help="show the value in force in this year")] = None,
    lines_file: Annotated[Optional[Path], typer.Option("--lines", help="CSV of your own lines (name, year, amount_yuan, source)")] = None,
) -> None:
    """The table of poverty lines (yuan per person per year) and their sources."""
    from .measure.lines import PovertyLines
    try:
        lines = PovertyLines.load(*([lines_file] if lines_file else []))
        values = ([lines.value(n, year) for n in lines.names if any(v.year <= year for v in lines.values if v.name == n)]
                  if year else lines.values)
    except EcpaError as exc:
        _fail(exc)
    t = Table()
    for col in ("name", "year", "yuan", "source"):
        t.add_column(col)
    for v in values:
        t.add_row(v.name, str(v.year), f"{v.amount_yuan:,}", v.source)
    console.print(t)


@measure_app.command("region")
def measure_region(
    code: str,
    year: Annotated[int, typer.Option(help="assessment year")],
    propose: Annotated[bool, typer.Option(help="write the households at risk as monitoring proposals")] = False,
    profile: str = "china",
) -> None:
    """Assess a county (or a township, a village) from the live database."""
    from .db import session_scope
    from .measure import service
    from .measure.config import load_config
    try:
        with session_scope() as s:
            result, at_risk = service.assess_region(s, _actor(), code, year,
                                                    load_config(None, year=year, profile=profile))
            added = service.propose_monitoring(s, _actor(), at_risk, year) if propose else 0
    except EcpaError as exc:
        _fail(exc)
    m = result.mpi[(result.mpi["level"] == "total") & result.mpi["subgroup"].isna()].iloc[0]
    f = result.fgt[(result.fgt["level"] == "total") & result.fgt["subgroup"].isna()]
    console.print(f"{result.households:,} households of {code}, {year}")
    for _, r in f.iterrows():
        console.print(f"  income poverty on {r['line']} ({r['line_yuan']:,.0f} yuan): "
                      f"{r['headcount_ratio']:.2%} of persons")
    console.print(f"  MPI (k={m['k']:.3f}): H {m['H']:.2%}, A {m['A']:.2%}, M0 {m['M0']:.4f}; "
                  f"driven by {m['drivers']}")
    console.print(f"  households at risk: {len(at_risk):,}"
                  + (f"; {added:,} new monitoring proposals" if propose else ""))


@measure_app.command("profile")
def measure_profile(name: str = "china") -> None:
    """Show an AF profile: dimensions, indicators, weights, deprivation rules, k."""
    from .measure.config import load_profile
    try:
        p = load_profile(name)
    except EcpaError as exc:
        _fail(exc)
    t = Table(title=f"{p.name}: {p.title} (k = {', '.join(str(k) for k in p.k)})")
    for col in ("dimension", "indicator", "weight", "deprived when"):
        t.add_column(col)
    for i in p.indicators:
        rule = i.when if i.level == "household" else f"{i.rule} member: {i.when}"
        t.add_row(i.dimension, i.name, str(i.weight), rule)
    console.print(t)


@app.command()
def demo(
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="start the web server after building")] = True,
    database: Annotated[Path, typer.Option(help="SQLite file of the demo (rebuilt)")] = Path("ecpa-demo.db"),
    households: int = 3000,
    seed: int = 1,
    host: Optional[str] = None,
    port: Optional[int] = None,
) -> None:
    """Build a demo database with a synthetic poor county and start the server,
    printing the address and a login for each role."""
    from .demo import build_demo
    from .config import get_settings
    try:
        logins = build_demo(database, households=households, seed=seed, console=console)
    except EcpaError as exc:
        _fail(exc)
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    t = Table("role", "username", "password", "scope")
    for row in logins:
        t.add_row(*row)
    console.print(t)
    if serve:
        import uvicorn
        from .api.app import create_app
        console.print(f"ECPA demo at http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
        uvicorn.run(create_app(), host=host, port=port, log_level="warning")


@app.command()
def serve(host: Optional[str] = None, port: Optional[int] = None) -> None:
    """Start the web server on the configured database."""
    import uvicorn
    from .api.app import create_app
    from .config import get_settings
    s = get_settings()
    console.print(f"ECPA at http://{host or s.host}:{port or s.port}/docs")
    uvicorn.run(create_app(), host=host or s.host, port=port or s.port, log_level="info")



# --- cooperatives (thin: every command calls ecpa.cooperatives.service) ---------------------

def _day(value: Optional[str], option: str = "--date", today_if_empty: bool = True) -> Optional[date]:
    """An option's date; when it was not given, today (or None)."""
    try:
        return date.fromisoformat(value) if value else (date.today() if today_if_empty else None)
    except ValueError:
        err.print(f"[red]error:[/red] {option} {value!r} is not YYYY-MM-DD")
        raise typer.Exit(2) from None


from .money import yuan as _yuan  # noqa: E402


@coop_app.command("models")
def coop_models() -> None:
    """The four Gansu models (seed 004 §3) as charter presets."""
    from .cooperatives.service import presets
    for p in presets().values():
        v = p.params
        capital = (f"1 share per {_yuan(v['fen_per_capital_share'])} yuan"
                   if v["fen_per_capital_share"] else "no shares")
        labour = (f"1 share per {v['labour_days_per_share']} days"
                  if v["labour_days_per_share"] else "no shares")
        console.print(f"[bold]{p.key}[/bold]  {p.title} — {p.source}")
        console.print(f"  wage {_yuan(v['wage_per_day_fen'] or 0)} yuan a labour day; land "
                      f"{v['shares_per_mu'] or 0} share(s) a mu; capital {capital}; labour "
                      f"{labour}; collective {(v['collective_bp'] or 0) / 100:g} %; "
                      f"reserve {(v['reserve_bp'] or 0) / 100:g} %")
        console.print(f"  {p.why}")


@coop_app.command("charter")
def coop_charter(
    cooperative_id: int, year: int,
    model: Annotated[str, typer.Option(help="gansu-3.1 … gansu-3.4 (see ecpa coop models) or custom")] = "custom",
    wage_per_day_fen: Optional[int] = None, shares_per_mu: Optional[int] = None,
    fen_per_capital_share: Optional[int] = None, labour_days_per_share: Optional[int] = None,
    collective_bp: Optional[int] = None, reserve_bp: Optional[int] = None,
    trade_return_bp: Annotated[Optional[int], typer.Option(
        help="share of the surplus returned by members' trade, basis points (0, or 6000-10000)")] = None,
    collective_region: Annotated[Optional[str], typer.Option(help="region code of the village collective")] = None,
) -> None:
    """Set a cooperative's charter for a year from a model, with any parameter overridden."""
    from .cooperatives.service import charter_view, set_charter
    from .db import session_scope
    try:
        with session_scope() as s:
            view = charter_view(set_charter(
                s, _actor(), cooperative_id, year, model, collective_region,
                wage_per_day_fen=wage_per_day_fen, shares_per_mu=shares_per_mu,
                fen_per_capital_share=fen_per_capital_share,
                labour_days_per_share=labour_days_per_share, collective_bp=collective_bp,
                reserve_bp=reserve_bp, trade_return_bp=trade_return_bp))
    except EcpaError as exc:
        _fail(exc)
    for k, v in view.items():
        console.print(f"{k}: {v}")


@coop_app.command("join")
def coop_join(cooperative_id: int, household_number: str,
              land_mu: Annotated[str, typer.Option(help="mu, to 0.01")] = "0",
              labourers: int = 0, capital_fen: int = 0,
              on: Annotated[Optional[str], typer.Option("--date", help="YYYY-MM-DD (default today)")] = None) -> None:
    """A household joins a cooperative with land, labour and capital."""
    from .cooperatives.service import join
    from .db import session_scope
    day = _day(on)
    try:
        with session_scope() as s:
            m = join(s, _actor(), cooperative_id, _household_id(s, household_number), day,
                     land_mu, labourers, capital_fen)
            joined = m.joined_on
    except EcpaError as exc:
        _fail(exc)
    console.print(f"household {household_number} member of cooperative {cooperative_id} "
                  f"since {joined}")


@coop_app.command("leave")
def coop_leave(cooperative_id: int, household_number: str,
               on: Annotated[Optional[str], typer.Option("--date", help="YYYY-MM-DD (default today)")] = None) -> None:
    """A household leaves a cooperative."""
    from .cooperatives.service import leave
    from .db import session_scope
    day = _day(on)
    try:
        with session_scope() as s:
            leave(s, _actor(), cooperative_id, _household_id(s, household_number), day)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"household {household_number} left cooperative {cooperative_id} on {day}")


@coop_app.command("members")
def coop_members(cooperative_id: int) -> None:
    """A cooperative's memberships and stakes."""
    from .cooperatives.service import members
    from .db import session_scope
    try:
        with session_scope() as s:
            rows = members(s, _actor(), cooperative_id)
    except EcpaError as exc:
        _fail(exc)
    t = Table("household", "joined", "left", "land (mu)", "labourers", "capital (yuan)")
    for m in rows:
        t.add_row(m["household_number"], m["joined_on"], m["left_on"] or "", m["land_mu"],
                  str(m["labourers"]), _yuan(m["capital_fen"]))
    console.print(t)


@coop_app.command("labour")
def coop_labour(cooperative_id: int, household_number: str, period: str, days: int,
                key: Annotated[Optional[str], typer.Option(help="idempotency key (default household:period)")] = None) -> None:
    """Record labour days a member household worked in a month (YYYY-MM)."""
    from .cooperatives.service import record_labour
    from .db import session_scope
    try:
        with session_scope() as s:
            record_labour(s, _actor(), cooperative_id, _household_id(s, household_number),
                          key or f"{household_number}:{period}", period, days)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"{days} labour days of household {household_number} in {period} recorded")


@coop_app.command("trade")
def coop_trade(cooperative_id: int, household_number: str,
               value: Annotated[str, typer.Option(help="value traded, yuan (e.g. 1234.50)")],
               product: Annotated[str, typer.Option(help="what was delivered or bought")],
               key: Annotated[str, typer.Option(
                   help="the delivery note or receipt number: two deliveries of a day are two records")],
               on: Annotated[Optional[str], typer.Option("--date", help="YYYY-MM-DD (default today)")] = None) -> None:
    """Record a member household's trade with the cooperative (for the return by trade)."""
    from .cooperatives.service import record_trade
    from .db import session_scope
    day = _day(on)
    fen = _lh_fen(value, "--value")
    try:
        with session_scope() as s:
            record_trade(s, _actor(), cooperative_id, _household_id(s, household_number),
                         key, day, fen, product)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"trade of household {household_number} on {day}: {_yuan(fen)} yuan of {product}")


@coop_app.command("pay-out")
def coop_pay_out(cooperative_id: int, household_number: str,
                 amount: Annotated[str, typer.Option(help="yuan, e.g. 1234.50")],
                 key: Annotated[str, typer.Option(help="the transfer's or receipt's number")],
                 method: Annotated[str, typer.Option(help="bank_transfer or cash")] = "bank_transfer",
                 on: Annotated[Optional[str], typer.Option("--date", help="YYYY-MM-DD (default today)")] = None) -> None:
    """Pay a member household what the cooperative owes it (wages, dividends, returns)."""
    from .cooperatives.service import pay_out
    from .db import session_scope
    day = _day(on)
    fen = _lh_fen(amount, "--amount")
    try:
        with session_scope() as s:
            out = pay_out(s, _actor(), cooperative_id, _household_id(s, household_number), key,
                          day, fen, method)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"paid {_yuan(fen)} yuan to household {household_number} ({method}); "
                  f"still owed {_yuan(out['owed_fen'])} yuan")


@coop_app.command("accounts")
def coop_accounts(cooperative_id: int) -> None:
    """Members' accounts: credited (wages, dividends, return by trade), paid out, owed."""
    from .cooperatives.service import member_accounts
    from .db import session_scope
    try:
        with session_scope() as s:
            rows = member_accounts(s, _actor(), cooperative_id)
    except EcpaError as exc:
        _fail(exc)
    t = Table("household", "wages", "dividends", "by trade", "paid out", "owed (yuan)")
    for r in rows:
        c = r["credited_fen"]
        t.add_row(r["household_number"], _yuan(c.get("employment", 0)),
                  _yuan(c.get("financial", 0)), _yuan(c.get("industry", 0)),
                  _yuan(r["paid_out_fen"]), _yuan(r["owed_fen"]))
    console.print(t)


@coop_app.command("pay-wages")
def coop_pay_wages(cooperative_id: int, period: str,
                   on: Annotated[Optional[str], typer.Option("--date", help="YYYY-MM-DD (default today)")] = None) -> None:
    """Pay a month's labour days at the charter's wage (a repeat pays nobody twice)."""
    from .cooperatives.service import pay_wages
    from .db import session_scope
    day = _day(on)
    try:
        with session_scope() as s:
            lines = pay_wages(s, _actor(), cooperative_id, period, day)
    except EcpaError as exc:
        _fail(exc)
    new = [x for x in lines if not x.already_paid]
    console.print(f"{len(new)} labour record(s) paid, {_yuan(sum(x.wage_fen for x in new))} yuan; "
                  f"{len(lines) - len(new)} paid before")


@coop_app.command("distribute")
def coop_distribute(cooperative_id: int, year: int,
                    surplus_fen: Annotated[int, typer.Option(help="the year's surplus, integer fen")],
                    on: Annotated[Optional[str], typer.Option("--date", help="YYYY-MM-DD (default today)")] = None) -> None:
    """Distribute a year's surplus: collective share, reserve, return by trade, dividends by share."""
    from .cooperatives.service import distribute
    from .db import session_scope
    day = _day(on)
    try:
        with session_scope() as s:
            st = distribute(s, _actor(), cooperative_id, year, surplus_fen, day)
    except EcpaError as exc:
        _fail(exc)
    _print_statement(st)


@coop_app.command("statement")
def coop_statement(cooperative_id: int, year: int) -> None:
    """The distribution statement of a year."""
    from .cooperatives.service import statement
    from .db import session_scope
    try:
        with session_scope() as s:
            st = statement(s, _actor(), cooperative_id, year)
    except EcpaError as exc:
        _fail(exc)
    _print_statement(st)


def _print_statement(st: dict) -> None:
    # The trade columns only where the year returned something by trade: a narrow
    # terminal keeps the household numbers whole.
    by_trade = bool(st["trade_return"]["fen"])
    cols = ["household", "land", "capital", "labour", "shares"]
    cols += ["trade (yuan)", "by trade (yuan)"] * by_trade + ["dividend (yuan)"]
    t = Table(*cols, title=f"{st['cooperative']}: {st['year']} surplus {_yuan(st['surplus_fen'])} "
                           f"yuan ({st['model']}), distributed {st['date']}")
    for m in st["members"]:
        row = [m["household_number"] or str(m["household_id"]), m["land_shares"],
               m["capital_shares"], m["labour_shares"], m["shares"]]
        row += [_yuan(m["trade_fen"]), _yuan(m["trade_return_fen"])] * by_trade
        t.add_row(*row, _yuan(m["dividend_fen"]))
    console.print(t)
    c, r = st["collective"], st["trade_return"]
    returned = (f"returned by trade: {_yuan(r['fen'])} yuan on {_yuan(r['total_trade_fen'])} "
                "yuan of trade; ") if by_trade else ""
    console.print(f"village collective {c['region_code'] or '-'}: {_yuan(c['fen'])} yuan; "
                  f"reserve: {_yuan(st['reserve']['fen'])} yuan; {returned}"
                  f"dividends: {_yuan(st['dividends_fen'])} yuan on {st['total_shares']} shares")


# --- livelihoods (thin: every command calls ecpa.livelihoods.service) -----------------------

def _lh_fen(value: Optional[str], option: str, negative: bool = False) -> Optional[int]:
    """Yuan as typed (``1234.5``) to integer fen, exactly."""
    from .registry.vocab import money_fen
    if value is None:
        return None
    text = value.strip()
    sign = -1 if negative and text.startswith("-") else 1
    try:
        return sign * money_fen(text[1:] if sign < 0 else text)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {option} {value!r}: {exc}")
        raise typer.Exit(2) from None


def _lh_choice(enum_cls, value: str, option: str):
    try:
        return enum_cls(value)
    except ValueError:
        err.print(f"[red]error:[/red] {option} {value!r} is not one of: "
                  f"{', '.join(m.value for m in enum_cls)}")
        raise typer.Exit(2) from None


def _lh_money(fen: int) -> str:
    return f"{_yuan(fen)} yuan"


@livelihoods_app.command("training-add")
def livelihoods_training_add(
    title: Annotated[str, typer.Option(help="title of the session")],
    topic: Annotated[str, typer.Option(help="ecommerce_operation, live_streaming, farming_technique, processing, logistics, smartphone, vocational, other")],
    region: Annotated[str, typer.Option(help="code of the county, township or village where it was held")],
    start: Annotated[str, typer.Option(help="first day, YYYY-MM-DD")],
    hours: Annotated[int, typer.Option(help="hours of teaching")],
    organiser: Annotated[str, typer.Option(help="who ran it")] = "",
    organiser_id: Annotated[Optional[int], typer.Option(help="a registered organisation that ran it")] = None,
    end: Annotated[Optional[str], typer.Option(help="last day (default: the first)")] = None,
    external: Annotated[int, typer.Option(help="cadres and enterprise staff trained who are not in the registry")] = 0,
) -> None:
    """Record a training session."""
    from .db import session_scope
    from .livelihoods import service
    from .livelihoods.models import TrainingTopic
    first = _day(start, "--start", today_if_empty=False)
    try:
        with session_scope() as s:
            t = service.create_training(
                s, _actor(), title=title, topic=_lh_choice(TrainingTopic, topic, "--topic"),
                organiser=organiser, organiser_id=organiser_id, region_code=region,
                start_date=first, end_date=_day(end, "--end", today_if_empty=False) or first, hours=hours,
                external_attendees=external)
            tid = t.id
    except EcpaError as exc:
        _fail(exc)
    console.print(f"training {tid}: {title} ({topic}) in {region} from {first}")


@livelihoods_app.command("attend")
def livelihoods_attend(
    training_id: int, member_id: int,
    not_completed: Annotated[bool, typer.Option("--not-completed", help="attended without completing")] = False,
    certificate: Annotated[Optional[str], typer.Option(help="certificate number")] = None,
    subsidy: Annotated[Optional[str], typer.Option(help="training subsidy to the household, yuan")] = None,
    paid_on: Annotated[Optional[str], typer.Option(help="date of the subsidy (default: the last day)")] = None,
) -> None:
    """Record a member's attendance at a training (once, however often recorded)."""
    from .db import session_scope
    from .livelihoods import service
    try:
        with session_scope() as s:
            a = service.record_attendance(
                s, _actor(), training_id, member_id, completed=not not_completed,
                certificate_no=certificate, subsidy_fen=_lh_fen(subsidy, "--subsidy") or 0,
                paid_on=_day(paid_on, "--paid-on", today_if_empty=False))
            done, paid = a.completed, a.subsidy_fen
    except EcpaError as exc:
        _fail(exc)
    console.print(f"member {member_id} at training {training_id}: "
                  f"{'completed' if done else 'attended'}"
                  + (f", subsidy {_lh_money(paid)}" if paid else ""))


@livelihoods_app.command("shop-open")
def livelihoods_shop_open(
    member_id: int,
    name: Annotated[str, typer.Option(help="name of the shop or business")],
    kind: Annotated[str, typer.Option(help="online_shop, live_stream, service_station, processing_workshop, shop, other")],
    opened: Annotated[str, typer.Option(help="opening day, YYYY-MM-DD")],
    platform: Annotated[Optional[str], typer.Option(help="platform of an online shop or live stream")] = None,
    training: Annotated[Optional[int], typer.Option(help="id of the training that led to it")] = None,
) -> None:
    """Record a shop or business a member opened."""
    from .db import session_scope
    from .livelihoods import service
    from .livelihoods.models import ShopKind
    try:
        with session_scope() as s:
            shop = service.open_shop(s, _actor(), member_id, name=name,
                                     kind=_lh_choice(ShopKind, kind, "--kind"),
                                     opened_on=_day(opened, "--opened", today_if_empty=False), platform=platform,
                                     training_id=training)
            sid = shop.id
    except EcpaError as exc:
        _fail(exc)
    console.print(f"shop {sid}: {name} of member {member_id}, opened {opened}")


@livelihoods_app.command("shop-close")
def livelihoods_shop_close(shop_id: int, on: Annotated[str, typer.Option("--date", help="YYYY-MM-DD")]) -> None:
    """Record that a shop closed."""
    from .db import session_scope
    from .livelihoods import service
    try:
        with session_scope() as s:
            service.close_shop(s, _actor(), shop_id, _day(on, "--date", today_if_empty=False))
    except EcpaError as exc:
        _fail(exc)
    console.print(f"shop {shop_id} closed on {on}")


@livelihoods_app.command("shop-earnings")
def livelihoods_shop_earnings(
    shop_id: int, period: Annotated[str, typer.Argument(help="the month, YYYY-MM")],
    net: Annotated[str, typer.Option(help="the month's net earnings, yuan (a loss: --net=-12.50)")],
) -> None:
    """Record a shop's net earnings of a month (once per month), credited to the household."""
    from .db import session_scope
    from .livelihoods import service
    try:
        with session_scope() as s:
            e = service.record_shop_earnings(s, _actor(), shop_id, period,
                                             _lh_fen(net, "--net", negative=True))
            fen = e.net_fen
    except EcpaError as exc:
        _fail(exc)
    console.print(f"shop {shop_id}, {period}: net earnings {_lh_money(fen)}")


@livelihoods_app.command("job-add")
def livelihoods_job_add(
    member_id: int,
    kind: Annotated[str, typer.Option(help="full_time, part_time, seasonal, public_welfare")],
    basis: Annotated[str, typer.Option(help="monthly or daily")],
    wage: Annotated[str, typer.Option(help="a month's or a day's wage, yuan")],
    start: Annotated[str, typer.Option(help="first day, YYYY-MM-DD")],
    employer_id: Annotated[Optional[int], typer.Option(help="a registered organisation")] = None,
    employer: Annotated[Optional[str], typer.Option(help="name of an employer outside the registry")] = None,
    title: str = "",
    transfer: Annotated[bool, typer.Option("--transfer", help="work outside the home county")] = False,
    end: Annotated[Optional[str], typer.Option(help="last day, YYYY-MM-DD")] = None,
) -> None:
    """Record a member's job."""
    from .db import session_scope
    from .livelihoods import service
    from .livelihoods.models import JobKind, WageBasis
    try:
        with session_scope() as s:
            job = service.add_job(
                s, _actor(), member_id, kind=_lh_choice(JobKind, kind, "--kind"),
                wage_basis=_lh_choice(WageBasis, basis, "--basis"), wage_fen=_lh_fen(wage, "--wage"),
                start_date=_day(start, "--start", today_if_empty=False), employer_id=employer_id,
                employer_name=employer, title=title, transfer=transfer,
                end_date=_day(end, "--end", today_if_empty=False))
            jid, who = job.id, job.employer_name
    except EcpaError as exc:
        _fail(exc)
    console.print(f"job {jid}: member {member_id} with {who} from {start}")


@livelihoods_app.command("pay-wage")
def livelihoods_pay_wage(
    job_id: int, period: Annotated[str, typer.Argument(help="the month worked, YYYY-MM")],
    amount: Annotated[Optional[str], typer.Option(help="yuan (default: from the wage)")] = None,
    days: Annotated[Optional[int], typer.Option(help="days worked (daily wage)")] = None,
    key: Annotated[Optional[str], typer.Option(help="idempotency key (default: the month)")] = None,
    paid_on: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD (default: the month's last day)")] = None,
) -> None:
    """Record a wage payment (once per key), credited to the household as wages."""
    from .db import session_scope
    from .livelihoods import service
    try:
        with session_scope() as s:
            w = service.pay_wage(s, _actor(), job_id, period, key=key,
                                 amount_fen=_lh_fen(amount, "--amount"), days=days,
                                 paid_on=_day(paid_on, "--paid-on", today_if_empty=False))
            fen = w.amount_fen
    except EcpaError as exc:
        _fail(exc)
    console.print(f"job {job_id}, {period}: paid {_lh_money(fen)}")


@livelihoods_app.command("job-end")
def livelihoods_job_end(job_id: int, on: Annotated[str, typer.Option("--date", help="last day, YYYY-MM-DD")]) -> None:
    """Record that a job ended (no wages for later months after that)."""
    from .db import session_scope
    from .livelihoods import service
    try:
        with session_scope() as s:
            service.end_job(s, _actor(), job_id, _day(on, "--date", today_if_empty=False))
    except EcpaError as exc:
        _fail(exc)
    console.print(f"job {job_id} ended on {on}")


@livelihoods_app.command("summary")
def livelihoods_summary(region: Annotated[str, typer.Option(help="county (or township, village) code")],
                        year: Annotated[int, typer.Option(help="the year")]) -> None:
    """People trained, shops opened, jobs held and the income they brought."""
    from .db import session_scope
    from .livelihoods import service
    try:
        with session_scope() as s:
            r = service.summary(s, _actor(), region, year)
    except EcpaError as exc:
        _fail(exc)
    tr, en, em, inc = r["training"], r["entrepreneurship"], r["employment"], r["income_fen"]
    t = Table("figure", "value", title=f"livelihoods of {region} in {year}")
    for label, value in (
            ("training sessions held (hours)", f"{tr['sessions_held']} ({tr['hours_held']})"),
            ("people trained (completed)", tr["people_trained"]),
            ("  of them from poor households", tr["trainees_from_poor_households"]),
            ("  attended without completing", tr["people_attended"] - tr["people_trained"]),
            ("others trained (cadres, enterprise staff)", tr["external_attendees"]),
            ("shops opened", en["shops_opened"]),
            ("  still open at the year's end", en["shops_opened_still_open"]),
            ("  opened by trainees", en["shops_opened_by_trainees"]),
            ("shops open at the year's end", en["shops_open_at_year_end"]),
            ("jobs held (people)", f"{em['jobs_held']} ({em['people_employed']})"),
            ("  started this year", em["jobs_started"]),
            ("  employment transfer", em["transfer_jobs"]),
            ("income: entrepreneurship", _lh_money(inc["entrepreneurship"])),
            ("income: employment (wages)", _lh_money(inc["employment"])),
            ("training subsidies (education, not income)", _lh_money(inc["education"])),
            ("households that received money", r["households_with_income"])):
        t.add_row(label, str(value))
    console.print(t)


# --- service stations (thin: every command calls ecpa.stations.service) ---------------------

@stations_app.command("add")
def stations_add(region: str, name: str,
                 keeper: Annotated[Optional[str], typer.Option(help="username of a station_keeper in that region")] = None,
                 phone: str = "",
                 commission_bp: Annotated[int, typer.Option(help="basis points of assisted purchases (1000 = 10 %)")] = 1000) -> None:
    """Open a station: the county centre, a township's or a village's (by the region's level)."""
    from .db import session_scope
    from .stations.service import create_station
    try:
        with session_scope() as s:
            st = create_station(s, _actor(), region, name, keeper, phone, commission_bp)
            sid, level = st.id, st.level.value
    except EcpaError as exc:
        _fail(exc)
    console.print(f"station {sid} ({level}) {name} at {region}")


@stations_app.command("list")
def stations_list(county: str) -> None:
    """A county's service network."""
    from .db import session_scope
    from .stations.service import network
    try:
        with session_scope() as s:
            net = network(s, county)
    except EcpaError as exc:
        _fail(exc)
    t = Table("region", "name", "station", "keeper", "commission", title=f"service network of {net['name']}")

    def row(code, name, st, indent=""):
        t.add_row(code, indent + name, f"{st['id']} {st['name']}" if st else "-",
                  (st or {}).get("keeper_username") or "-",
                  f"{st['commission_bp'] / 100:g} %" if st else "")
    row(county, net["name"], net["centre"])
    for tw in net["townships"]:
        row(tw["region_code"], tw["name"], tw["station"], "  ")
        for v in tw["villages"]:
            row(v["region_code"], v["name"], v["station"], "    ")
    console.print(t)


@stations_app.command("zone")
def stations_zone(region: str, zone: str,
                  fee_fen: Annotated[int, typer.Option(help="fee up to the base weight, fen")],
                  days: Annotated[int, typer.Option(help="expected days")],
                  base_weight_g: int = 1000, per_kg_fen: int = 0,
                  pickup: Annotated[bool, typer.Option(help="couriers stop short: pickup at the nearest station")] = False) -> None:
    """Set a delivery zone (county_town, township, village) for a county or one township."""
    from .db import session_scope
    from .stations.service import set_zone
    try:
        with session_scope() as s:
            set_zone(s, _actor(), region, zone, fee_fen=fee_fen, days=days,
                     base_weight_g=base_weight_g, per_kg_fen=per_kg_fen, door_delivery=not pickup)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"{zone} zone of {region}: {_yuan(fee_fen)} yuan, {days} day(s)"
                  + (", pickup at the station" if pickup else ""))


@stations_app.command("quote")
def stations_quote(ship_to: str, weight_g: int) -> None:
    """Delivery fee, days and pickup station for a parcel to a region."""
    from .db import session_scope
    from .stations.service import quote_delivery
    try:
        with session_scope() as s:
            q = quote_delivery(s, ship_to, weight_g)
    except EcpaError as exc:
        _fail(exc)
    where = f"pickup at station {q.pickup_station_id}" if q.pickup_station_id else "to the door"
    console.print(f"{q.zone}: {_yuan(q.fee_fen)} yuan, {q.days} day(s), {where}")


# ---------------------------------------------------------------- duplicates (issue 6)


def _pair_ids(s, a: str, b: str) -> tuple[int, int]:
    return _household_id(s, a), _household_id(s, b)


def _print_queue(items: list[dict]) -> None:
    t = Table("id", "state", "reasons", "household A", "household B", "matching members")
    for i in items:
        a, b = i["household_a"], i["household_b"]
        shown = [f"{w['name']} {w['id_number']}" for m in i["matches"]
                 for w in (m["member_a"] or m["member_b"],) if w]
        t.add_row(str(i["id"]), i["state"], ",".join(i["reasons"]), a["number"], b["number"],
                  "; ".join(dict.fromkeys(shown)))
    console.print(t)


@duplicates_app.command("find")
def duplicates_find(region: Annotated[str, typer.Option("--region", help="region code (a province, county, …)")]) -> None:
    """Find candidate duplicate households in a region and queue the new pairs."""
    from .db import session_scope
    from .duplicates.service import find_in_region
    try:
        with session_scope() as s:
            out = find_in_region(s, _actor(), region)
    except EcpaError as exc:
        _fail(exc)
    by = ", ".join(f"{k} {v}" for k, v in out["pairs_by_reason"].items())
    console.print(f"region {region}: {out['pairs_found']} candidate pair(s) ({by}); "
                  f"{out['queued']} newly queued, {out['reopened']} reopened, "
                  f"{out['widened']} with new reasons; {out['seconds']} s")


@duplicates_app.command("list")
def duplicates_list(region: Annotated[Optional[str], typer.Option("--region")] = None,
                    state: Annotated[str, typer.Option(help="pending, distinct, merged, superseded or all")] = "pending",
                    page: int = 1, page_size: int = 50) -> None:
    """The queue of candidate pairs (personal data masked)."""
    from .db import session_scope
    from .duplicates.models import CandidateState
    from .duplicates.service import list_queue
    try:
        st = None if state == "all" else CandidateState(state)
    except ValueError:
        err.print(f"[red]error:[/red] unknown state {state!r}")
        raise typer.Exit(2)
    try:
        with session_scope() as s:
            total, items = list_queue(s, _actor(), region, st, page, page_size)
    except EcpaError as exc:
        _fail(exc)
    _print_queue(items)
    console.print(f"{total} pair(s); page {page}")


@duplicates_app.command("merge")
def duplicates_merge(survivor: Annotated[str, typer.Argument(help="household number that stays")],
                     merged: Annotated[str, typer.Argument(help="household number merged into it")],
                     note: Annotated[str, typer.Option(help="why")] = "") -> None:
    """Merge household B into household A, keeping the history of both."""
    from .db import session_scope
    from .duplicates.service import merge
    try:
        with session_scope() as s:
            a, b = _pair_ids(s, survivor, merged)
            out = merge(s, _actor(), a, b, note)
    except EcpaError as exc:
        _fail(exc)
    d = out["detail"]
    console.print(f"household {merged} merged into {survivor} (merge record {out['id']}): "
                  f"{len(d['members_moved'])} member(s) moved, {len(d['members_linked'])} linked as the "
                  f"same person, {len(d['status_events_moved'])} status event(s), "
                  f"{len(d['incomes_moved'])} income record(s), {len(d['help_measures_moved'])} help measure(s) moved")


@duplicates_app.command("unmerge")
def duplicates_unmerge(merge_id: Annotated[int, typer.Argument(help="the merge record's id")],
                       reason: Annotated[str, typer.Option(help="why the merge was wrong")]) -> None:
    """Undo a merge: what moved goes back and the merged household is live again."""
    from .db import session_scope
    from .duplicates.service import unmerge
    try:
        with session_scope() as s:
            out = unmerge(s, _actor(), merge_id, reason)
    except EcpaError as exc:
        _fail(exc)
    d = out["undo_detail"]
    gone = sum(len(v) for v in d["not_found_on_survivor"].values())
    console.print(f"merge {merge_id} undone: {len(d['members_moved_back'])} member(s), "
                  f"{len(d['status_events_moved_back'])} status event(s), "
                  f"{len(d['incomes_moved_back'])} income record(s), "
                  f"{len(d['help_measures_moved_back'])} help measure(s) moved back; "
                  f"{len(d['candidates_reopened'])} pair(s) pending again"
                  + (f"; {gone} record(s) no longer on the survivor, left as they are" if gone else ""))


@duplicates_app.command("distinct")
def duplicates_distinct(a: str, b: str, note: Annotated[str, typer.Option(help="why")] = "") -> None:
    """Mark two households (numbers) distinct: not proposed again for the same reasons."""
    from .db import session_scope
    from .duplicates.service import mark_distinct, pair
    from .errors import NotFound
    try:
        with session_scope() as s:
            ha, hb = _pair_ids(s, a, b)
            c = pair(s, ha, hb)
            if c is None:
                raise NotFound(f"households {a} and {b} are not a queued pair")
            mark_distinct(s, _actor(), c.id, note)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"households {a} and {b} marked distinct")


# --- grievances (thin: every command calls ecpa.grievances.service) ------------------------

@grievances_app.command("list")
def grievances_list(region: Annotated[str, typer.Option(help="county, township or village code")],
                    status: Annotated[Optional[str], typer.Option(help="received, assigned, in_progress, resolved, rejected, closed")] = None) -> None:
    """Grievances filed in a region, with their office and deadline."""
    from .db import session_scope
    from .grievances.service import list_region
    try:
        with session_scope() as s:
            rows = list_region(s, _actor(), region, status=status)
    except EcpaError as exc:
        _fail(exc)
    # One line each (no table): whole references however narrow the terminal, and greppable.
    console.print(f"{len(rows)} grievance(s) in {region}", soft_wrap=True)
    for g in rows:
        office = g["office"]
        console.print(f"{g['reference']}  {g['category']}  {g['status']}  {g['region_code']}  "
                      f"{office['role']}@{office['region_code'] or 'platform'}  "
                      f"due {g['due_at'][:16]} UTC" + ("  OVERDUE" if g["overdue"] else ""),
                      soft_wrap=True, highlight=False)


@grievances_app.command("escalate-overdue")
def grievances_escalate_overdue(
        now: Annotated[Optional[str], typer.Option(help="ISO time (UTC) to run as; default now")] = None) -> None:
    """What the daily timer runs: overdue grievances move one office up; resolved ones not
    reopened in time are closed."""
    from datetime import datetime

    from .db import session_scope
    from .grievances.service import escalate_overdue
    try:
        at = datetime.fromisoformat(now) if now else None
    except ValueError:
        err.print(f"[red]error:[/red] --now {now!r} is not an ISO date-time")
        raise typer.Exit(2) from None
    try:
        with session_scope() as s:
            r = escalate_overdue(s, at)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"escalated {len(r['escalated'])}, flagged {len(r['flagged'])} at the last "
                  f"office, closed {len(r['closed'])}")
    for ref in r["escalated"]:
        console.print(f"  escalated {ref}", soft_wrap=True, highlight=False)


@app.command()
def quality(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="LAYOUT_DIR OUT_DIR (with --db: OUT_DIR only, optional)")] = None,
    region: Annotated[Optional[str], typer.Option(help="county, township or village code")] = None,
    year: Annotated[Optional[int], typer.Option(help="data year (default: latest income year)")] = None,
    db: Annotated[bool, typer.Option("--db", help="run over the live database's region and update its villages' worklists")] = False,
    xlsx: Annotated[bool, typer.Option(help="also write a workbook per county, a sheet per village")] = True,
    worklists: Annotated[bool, typer.Option(help="write the per-village worklists (else findings.parquet and summary.csv only)")] = True,
    memory_limit: Annotated[Optional[str], typer.Option(help="DuckDB memory limit, e.g. 6GB")] = None,
) -> None:
    """Run the data-quality rules over a Parquet layout (or a region of the database)
    and write a worklist per village."""
    import time
    from .quality.engine import run_rules, write_worklists
    paths = paths or []
    started = time.perf_counter()
    try:
        if db:
            if not region or len(paths) > 1:
                err.print("[red]error:[/red] --db needs --region CODE and at most OUT_DIR")
                raise typer.Exit(2)
            from .db import session_scope
            from .quality.service import run_region
            with session_scope() as s:
                record, run = run_region(s, _actor(), region, year, paths[0] if paths else None, xlsx)
            lists = None
            console.print(f"run {record.id}: {record.opened:,} new or reopened items, "
                          f"{record.resolved:,} resolved")
        else:
            if len(paths) != 2:
                err.print("[red]error:[/red] give LAYOUT_DIR OUT_DIR (or --db --region CODE)")
                raise typer.Exit(2)
            run = run_rules(paths[0], paths[1], year=year, region=region, memory_limit=memory_limit)
            lists = write_worklists(run.findings_path, paths[1], xlsx=xlsx) if worklists else None
    except EcpaError as exc:
        _fail(exc)
    t = Table(title=f"{run.households:,} households, {run.findings:,} findings, year {run.year} "
                    f"({time.perf_counter() - started:.1f} s)")
    for col in ("rule", "severity", "count", "problem"):
        t.add_column(col)
    for c in sorted(run.counts, key=lambda c: (c["severity"], -c["count"], c["rule"])):
        if c["count"]:
            t.add_row(c["rule"], c["severity"], f"{c['count']:,}", c["message_en"])
    console.print(t)
    if lists is not None:
        console.print(f"worklists of {lists['villages']:,} villages in {paths[1]}/villages/, "
                      f"{lists['workbooks']:,} county workbooks; all findings in findings.parquet")


if __name__ == "__main__":  # pragma: no cover
    app()


# The programs' commands live beside their use cases (ecpa/programs/commands.py).
from .cases.commands import case_app  # noqa: E402
from .recommend.commands import recommend  # noqa: E402
from .programs.commands import farm_app, loan_app, scenario  # noqa: E402

app.add_typer(farm_app, name="farm")
app.add_typer(loan_app, name="loan")
app.command("scenario")(scenario)
app.add_typer(case_app, name="case")
app.command("recommend")(recommend)
from .evaluate.cli import evaluate_app  # noqa: E402

app.add_typer(evaluate_app, name="evaluate")
