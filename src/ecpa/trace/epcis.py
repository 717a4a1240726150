"""GS1 pieces of traceability: GTIN check digits, GS1 Digital Link URIs, the canonical
EPCIS event hash, and validation against GS1's EPCIS 2.0 JSON schema.

The event hash follows the "EPCIS Event Hash ID" algorithm of CBV 2.0 §8.9 as specified
and implemented in github.com/RalphTro/epcis-event-hash-generator (README "Algorithm"):
a pre-hash string of ``key=value`` pieces in the canonical property order, values
normalised (timestamps to UTC milliseconds, numbers without trailing zeros, CBV URNs,
bare words and CURIEs to GS1 Web URIs, EPC URIs to constrained canonical Digital Link
URIs, lists sorted), eventID / recordTime / errorDeclaration left out, then SHA-256 in an
RFC 6920 ``ni:`` URI with ``?ver=CBV2.0``.  (The PyPI release 1.9.3 of that package
predates the repository's fix that puts a bizTransaction's type after its value, so ECPA
implements the algorithm itself rather than depending on it.)

Sensor data is not produced by ECPA and is refused at capture rather than hashed half-right.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from urllib.parse import quote, unquote, urlsplit

GS1_DOMAIN = "https://id.gs1.org"
CBV = "https://ref.gs1.org/cbv/"
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# ECPA's own vocabulary for ILMD and extensions (batch attributes without a CBV term).
ECPA_NS = "https://w3id.org/ecpa/voc/"
CONTEXT = [EPCIS_CONTEXT, {"ecpa": ECPA_NS}]

EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent",
               "AssociationEvent")

# ---------------------------------------------------------------- GS1 keys


def gs1_check_digit(body: str) -> str:
    """The GS1 mod-10 check digit (GS1 General Specifications §7.9.1)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def valid_gs1_key(key: str) -> bool:
    return key.isdigit() and key.isascii() and len(key) >= 2 and gs1_check_digit(key[:-1]) == key[-1]


def normalise_gtin(gtin: str) -> str:
    """A GTIN-8/12/13/14 as GTIN-14; ValueError when malformed or the check digit is wrong."""
    g = (gtin or "").strip()
    if not (g.isascii() and g.isdigit()) or len(g) not in (8, 12, 13, 14):
        raise ValueError("a GTIN has 8, 12, 13 or 14 digits")
    if not valid_gs1_key(g):
        raise ValueError(f"wrong GTIN check digit: expected {gs1_check_digit(g[:-1])}")
    return g.zfill(14)


# GS1 AI (10) allows the 82-character set; ECPA keeps lots to characters that need no
# percent-encoding in a Digital Link URI, so the URI printed on the bag is the plain lot.
LOT_RE = re.compile(r"^[A-Za-z0-9._-]{1,20}$")


def digital_link(gtin: str, lot: str, domain: str = GS1_DOMAIN) -> str:
    """The batch URI in GS1 Digital Link form: ``{domain}/01/{GTIN-14}/10/{lot}``."""
    return f"{domain.rstrip('/')}/01/{normalise_gtin(gtin)}/10/{_dl_encode(lot)}"


def _dl_encode(value: str) -> str:
    # GS1 Digital Link 1.2 §4.11: percent-encode everything but unreserved characters.
    return quote(unquote(value), safe="-._~")


def sscc_uri(sscc: str) -> str:
    if len(sscc) != 18 or not valid_gs1_key(sscc):
        raise ValueError("an SSCC has 18 digits and a valid check digit")
    return f"{GS1_DOMAIN}/00/{sscc}"


def gln_uri(gln: str, extension: str | None = None) -> str:
    if len(gln) != 13 or not valid_gs1_key(gln):
        raise ValueError("a GLN has 13 digits and a valid check digit")
    return f"{GS1_DOMAIN}/414/{gln}" + (f"/254/{_dl_encode(extension)}" if extension else "")


# ------------------------------------------------- normalisation of values

_CBV_URN = {"urn:epcglobal:cbv:bizstep:": CBV + "BizStep-", "urn:epcglobal:cbv:disp:": CBV + "Disp-",
            "urn:epcglobal:cbv:btt:": CBV + "BTT-", "urn:epcglobal:cbv:sdt:": CBV + "SDT-",
            "urn:epcglobal:cbv:er:": CBV + "ER-"}
_CURIES = {"gs1": "https://gs1.org/voc/", "cbv": CBV, "epcis": "https://ref.gs1.org/epcis/"}
# Fields whose bare-word values are CBV terms (rule 16), with the term's prefix.
_BARE = {"bizStep": "BizStep-", "disposition": "Disp-", "set": "Disp-", "unset": "Disp-",
         "bizTransactionType": "BTT-", "sourceType": "SDT-", "destinationType": "SDT-",
         "reason": "ER-"}
_BARE_WORD = re.compile(r"^[A-Za-z0-9_]+$")

_CP_ITEM = r"(\d{6}\.\d{7}|\d{7}\.\d{6}|\d{8}\.\d{5}|\d{9}\.\d{4}|\d{10}\.\d{3}|\d{11}\.\d{2}|\d{12}\.\d)"
_CP_LOC = r"(\d{6}\.\d{6}|\d{7}\.\d{5}|\d{8}\.\d{4}|\d{9}\.\d{3}|\d{10}\.\d{2}|\d{11}\.\d|\d{12}\.)"
_CP_SSCC = r"(\d{6}\.\d{11}|\d{7}\.\d{10}|\d{8}\.\d{9}|\d{9}\.\d{8}|\d{10}\.\d{7}|\d{11}\.\d{6}|\d{12}\.\d{5})"
_EPC_CHARS = r"((?:%[0-9A-Fa-f]{2}|[!')(*+,.0-9:;=A-Za-z_-]){1,20})"
_SGTIN = re.compile(rf"^urn:epc:id:sgtin:{_CP_ITEM}\.{_EPC_CHARS}$")
_LGTIN = re.compile(rf"^urn:epc:class:lgtin:{_CP_ITEM}\.{_EPC_CHARS}$")
_SGTIN_PAT = re.compile(rf"^urn:epc:idpat:sgtin:{_CP_ITEM}\.\*$")
_SSCC = re.compile(rf"^urn:epc:id:sscc:{_CP_SSCC}$")
_SGLN = re.compile(rf"^urn:epc:id:sgln:{_CP_LOC}\.{_EPC_CHARS}$")
_PGLN = re.compile(rf"^urn:epc:id:pgln:{_CP_LOC}$")


def _epc_encode(value: str) -> str:
    # The reference normaliser keeps the EPC URI's escapes and encodes the characters
    # GS1 Digital Link requires but EPC URIs allow.
    for ch, enc in (("!", "%21"), ("(", "%28"), (")", "%29"), ("*", "%2A"), ("+", "%2B"),
                    (",", "%2C"), (":", "%3A")):
        value = value.replace(ch, enc)
    return value


def _gtin_from(cp_item: str) -> str:
    cp, item = cp_item.split(".")
    body = item[0] + cp + item[1:]
    return body + gs1_check_digit(body)


def _gln_from(cp_loc: str) -> str:
    body = cp_loc.replace(".", "")
    return body + gs1_check_digit(body)


def epc_to_digital_link(uri: str) -> str | None:
    """EPC (class/pattern) URI → canonical GS1 Digital Link URI, or None."""
    if m := _SGTIN.match(uri):
        return f"{GS1_DOMAIN}/01/{_gtin_from(m[1])}/21/{_epc_encode(m[2])}"
    if m := _LGTIN.match(uri):
        return f"{GS1_DOMAIN}/01/{_gtin_from(m[1])}/10/{_epc_encode(m[2])}"
    if m := _SGTIN_PAT.match(uri):
        return f"{GS1_DOMAIN}/01/{_gtin_from(m[1])}"
    if m := _SSCC.match(uri):
        cp, ref = m[1].split(".")
        body = ref[0] + cp + ref[1:]
        return f"{GS1_DOMAIN}/00/{body}{gs1_check_digit(body)}"
    if m := _SGLN.match(uri):
        gln = _gln_from(m[1])
        ext = m[2]
        return f"{GS1_DOMAIN}/414/{gln}" + ("" if ext == "0" else f"/254/{_epc_encode(ext)}")
    if m := _PGLN.match(uri):
        return f"{GS1_DOMAIN}/417/{_gln_from(m[1])}"
    return None


_PRIMARY = {"00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010",
            "8017", "8018"}
# Rule 18 (III): the key qualifiers kept, most fine-grained first.
_QUALIFIERS = {"01": ("21", "10", "235"), "414": ("254",), "8006": ("21", "10"), "8010": ("8011",)}


def constrain_digital_link(uri: str) -> str | None:
    """A GS1 Digital Link URI on any domain → constrained canonical form on id.gs1.org
    (query dropped, only the most fine-grained key qualifier kept), or None."""
    if not uri.startswith(("http://", "https://")):
        return None
    parts = urlsplit(uri)
    segs = [s for s in parts.path.split("/") if s]
    for i, seg in enumerate(segs):
        if seg in _PRIMARY and i + 1 < len(segs) and (len(segs) - i) % 2 == 0:
            pairs = dict(zip(segs[i::2], segs[i + 1::2]))
            if not all(re.fullmatch(r"\d{2,4}", k) for k in pairs):
                return None
            key = pairs[seg]
            if seg == "01":
                if not key.isdigit() or len(key) not in (8, 12, 13, 14):
                    return None
                key = key.zfill(14)
            out = f"{GS1_DOMAIN}/{seg}/{key}"
            for q in _QUALIFIERS.get(seg, ()):
                if q in pairs:
                    out += f"/{q}/{pairs[q]}"
                    break
            return out
    return None


def _fix_time(value: str) -> str:
    """UTC with millisecond precision and 'Z' (rules 8–9; 4th decimal rounds)."""
    s = value.strip()
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return s
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    ms = round(dt.microsecond, -3)
    dt = dt.replace(microsecond=0) + timedelta(microseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _fix_number(text: str) -> str:
    # Rule 6 as the reference applies it: anything that reads as a number loses trailing zeros.
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number == int(number) else str(number)


def canonical_value(value: object, field: str = "", prefixes: dict[str, str] | None = None) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float, Decimal)):
        text = str(value)
    else:
        text = str(value)
    text = text.strip()
    if field in _BARE and _BARE_WORD.match(text):
        return CBV + _BARE[field] + text
    for urn, web in _CBV_URN.items():
        if text.startswith(urn):
            text = web + text[len(urn):]
    head, sep, tail = text.partition(":")
    if sep and not tail.startswith("//"):
        ns = (prefixes or {}).get(head) or _CURIES.get(head)
        if ns:
            text = ns + tail
    text = _fix_number(text)
    return epc_to_digital_link(text) or constrain_digital_link(text) or text


# ------------------------------------------------------------- pre-hash string

_SIMPLE_LISTS = ("epcList", "parentID", "inputEPCList", "childEPCs")
_QTY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList")
_KNOWN = {"@context", "type", "eventID", "recordTime", "errorDeclaration", "eventTime",
          "eventTimeZoneOffset", "certificationInfo", "epcList", "parentID", "inputEPCList", "childEPCs",
          "quantityList", "childQuantityList", "inputQuantityList", "outputEPCList",
          "outputQuantityList", "action", "transformationID", "bizStep", "disposition",
          "persistentDisposition", "readPoint", "bizLocation", "bizTransactionList", "sourceList",
          "destinationList", "sensorElementList", "ilmd"}


def context_prefixes(context: object) -> dict[str, str]:
    """Namespace prefixes declared in a JSON-LD @context (objects in it, or it alone)."""
    out: dict[str, str] = {}
    items = context if isinstance(context, list) else [context]
    for item in items:
        if isinstance(item, dict):
            out.update({k: v for k, v in item.items() if isinstance(v, str)})
    return out


def _expand_key(key: str, prefixes: dict[str, str]) -> str:
    """``ecpa:harvestDate`` → ``{https://w3id.org/ecpa/voc/}harvestDate`` (rules 19–20)."""
    head, sep, local = key.partition(":")
    if sep and not local.startswith("//"):
        ns = prefixes.get(head) or _CURIES.get(head)
        if ns:
            return "{" + ns + "}" + local
    if key.startswith(("http://", "https://")):
        cut = max(key.rfind("/"), key.rfind("#")) + 1
        return "{" + key[:cut] + "}" + key[cut:]
    return key


def _generic(key: str, value: object, prefixes: dict[str, str]) -> list[str]:
    """Pieces for an ILMD or extension element: ``{ns}name=value``, nested elements
    appended after their parent's name, sorted at each level."""
    name = _expand_key(key, prefixes)
    if isinstance(value, list):
        return [p for v in value for p in _generic(key, v, prefixes)]
    if isinstance(value, dict):
        children = sorted(p for k, v in value.items() for p in _generic(k, v, prefixes))
        return [name + "".join(children)]
    if value is None or (isinstance(value, str) and not value.strip()):
        return [name]
    return [f"{name}={canonical_value(value, prefixes=prefixes)}"]


def _quantity(element: dict, prefixes: dict[str, str]) -> str:
    s = "quantityElement"
    for k in ("epcClass", "quantity", "uom"):
        if k in element and element[k] is not None:
            s += f"{k}={canonical_value(element[k], k, prefixes)}"
    return s


def _typed(items: list, name: str, prefixes: dict[str, str]) -> str:
    # Rule 13: the type follows the identifier; then the elements are sorted.
    pieces = []
    for it in items:
        p = f"{name}={canonical_value(it.get(name, ''), name, prefixes)}"
        if it.get("type") is not None:
            p += f"type={canonical_value(it['type'], name + 'Type', prefixes)}"
        pieces.append(p)
    return name + "List" + "".join(sorted(pieces)) if pieces else ""


def prehash(event: dict, context: object = None) -> str:
    """The canonical pre-hash string of one EPCIS 2.0 JSON event."""
    prefixes = context_prefixes(context) | context_prefixes(event.get("@context"))
    out = ["eventType=" + str(event.get("type", "")).strip()]
    if "eventTime" in event:
        out.append("eventTime=" + _fix_time(str(event["eventTime"])))
    if "eventTimeZoneOffset" in event:
        out.append("eventTimeZoneOffset=" + str(event["eventTimeZoneOffset"]).strip())
    if event.get("certificationInfo") is not None:
        ci = event["certificationInfo"]
        for v in sorted(canonical_value(x, prefixes=prefixes) for x in (ci if isinstance(ci, list) else [ci])):
            out.append("certificationInfo=" + v)
    for name in ("epcList", "parentID", "inputEPCList", "childEPCs", "quantityList",
                 "childQuantityList", "inputQuantityList", "outputEPCList", "outputQuantityList"):
        value = event.get(name)
        if value in (None, [], ""):
            continue
        if name == "parentID":
            out.append("parentID=" + canonical_value(value, name, prefixes))
        elif name.endswith("QuantityList") or name == "quantityList":
            out.append(name + "".join(sorted(_quantity(q, prefixes) for q in value)))
        else:
            out.append(name + "".join(sorted("epc=" + canonical_value(v, "epc", prefixes) for v in value)))
    for name in ("action", "transformationID", "bizStep", "disposition"):
        if event.get(name) not in (None, ""):
            out.append(f"{name}={canonical_value(event[name], name, prefixes)}")
    pd = event.get("persistentDisposition")
    if pd:
        s = "".join("".join(sorted(f"{k}={canonical_value(v, k, prefixes)}" for v in pd.get(k) or []))
                    for k in ("set", "unset"))
        if s:
            out.append("persistentDisposition" + s)
    for name in ("readPoint", "bizLocation"):
        loc = event.get(name)
        if loc:
            s = name + (f"id={canonical_value(loc['id'], 'id', prefixes)}" if loc.get("id") else "")
            ext = sorted(p for k, v in loc.items() if k != "id" for p in _generic(k, v, prefixes))
            out.append(s + "".join(ext))
    out.append(_typed(event.get("bizTransactionList") or [], "bizTransaction", prefixes))
    out.append(_typed(event.get("sourceList") or [], "source", prefixes))
    out.append(_typed(event.get("destinationList") or [], "destination", prefixes))
    # ILMD and user extensions: the leftovers, sorted together (ilmd sorts before "{…").
    rest = []
    if event.get("ilmd"):
        rest.append("ilmd" + "".join(sorted(p for k, v in event["ilmd"].items()
                                            for p in _generic(k, v, prefixes))))
    for key, value in event.items():
        if key not in _KNOWN and not key.startswith("@"):
            rest.extend(_generic(key, value, prefixes))
    out.extend(sorted(rest))
    return "".join(out)


def event_hash(event: dict, context: object = None) -> str:
    """The EPCIS Event Hash ID: ``ni:///sha-256;<hex>?ver=CBV2.0``."""
    digest = hashlib.sha256(prehash(event, context).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"


def identifiers(event: dict) -> set[str]:
    """Every object identifier an event names (canonical Digital Link form)."""
    out: set[str] = set()
    for name in ("epcList", "inputEPCList", "outputEPCList", "childEPCs"):
        out.update(canonical_value(v) for v in event.get(name) or [])
    for name in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        out.update(canonical_value(q.get("epcClass", "")) for q in event.get(name) or [])
    if event.get("parentID"):
        out.add(canonical_value(event["parentID"]))
    return out


# ------------------------------------------------------------------ documents

def iso_time(dt: datetime) -> str:
    """An aware datetime as EPCIS writes it: local time, milliseconds, offset."""
    return dt.isoformat(timespec="milliseconds")


def offset_of(dt: datetime) -> str:
    off = dt.utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    minutes = abs(int(off.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def document(events: list[dict], created: datetime) -> dict:
    """An EPCIS 2.0 JSON-LD document around events (their own @context moved up)."""
    body = [{k: v for k, v in e.items() if k != "@context"} for e in events]
    return {"@context": CONTEXT, "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": iso_time(created), "epcisBody": {"eventList": body}}


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft7Validator

    text = resources.files(__package__).joinpath("schema/EPCIS-JSON-Schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def schema_errors(doc: dict) -> list[tuple[str, str]]:
    """(JSON path, message) of every way a document breaks GS1's EPCIS 2.0 JSON schema."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    out = []
    for e in errors:
        leaf = e
        while leaf.context:  # the most specific failure inside anyOf / allOf
            leaf = min(leaf.context, key=lambda c: -len(c.absolute_path))
        path = ".".join(str(p) for p in leaf.absolute_path) or ".".join(str(p) for p in e.absolute_path)
        out.append((path, leaf.message[:300]))
    return out
