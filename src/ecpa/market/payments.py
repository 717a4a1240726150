"""Payments through a gateway interface, and the test gateway ECPA ships.

A payment row is committed before the gateway is asked (no lock is held across a network
call).  The gateway's callback is accepted only when its signature is right, its payment
is known, and its amount is the payment's: a forged, unknown, wrong-amount or repeated
callback changes nothing, and every callback is kept in ``market_payment_callback``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import get_settings
from ..db import utcnow
from ..errors import Conflict, EcpaError, InvalidInput, NotFound
from ..ledger.service import Leg, post
from ..people.access import Actor
from .models import (
    Order,
    OrderLine,
    OrderState,
    Payment,
    PaymentCallback,
    PaymentState,
    Refund,
    Sku,
)
from .orders import IN_TRANSIT, _order, gateway_account, order_view, require_party


class Forged(EcpaError):
    status = 400
    code = "bad_signature"


class TestGateway:
    """A gateway for development and tests: no network; callbacks signed with
    HMAC-SHA256 under a key derived from the instance's secret."""

    name = "test"

    def __init__(self, secret: bytes | None = None):
        base = secret or (get_settings().secret_key or "ecpa-test-gateway").encode()
        self.key = hmac.new(base, b"ecpa test gateway", hashlib.sha256).digest()
        self.refunds: list[tuple[str, int]] = []
        self._refund_keys: set[str] = set()

    def create(self, reference: str, amount_fen: int) -> str:
        return f"/api/market/test-gateway/{reference}/pay"

    def refund(self, reference: str, amount_fen: int, key: str) -> None:
        """Send money back; a key already sent is not sent again (as real gateways do
        with their refund request numbers)."""
        if key not in self._refund_keys:
            self._refund_keys.add(key)
            self.refunds.append((reference, amount_fen))

    def sign(self, body: bytes) -> str:
        return hmac.new(self.key, body, hashlib.sha256).hexdigest()

    def verify(self, body: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(body), signature or "")

    def callback(self, reference: str, amount_fen: int, status: str = "paid") -> tuple[bytes, str]:
        """What the gateway would send when the consumer has paid: body and signature."""
        body = json.dumps({"reference": reference, "amount_fen": amount_fen, "status": status},
                          separators=(",", ":")).encode()
        return body, self.sign(body)


_GATEWAYS: dict[str, object] = {}


def gateway_named(name: str):
    if name not in _GATEWAYS:
        if name != TestGateway.name:
            raise NotFound(f"no payment gateway {name!r}", field="gateway")
        _GATEWAYS[name] = TestGateway()
    return _GATEWAYS[name]


def reset_gateways() -> None:
    _GATEWAYS.clear()


@dataclass
class PaymentStart:
    order_id: int
    reference: str
    amount_fen: int
    pay_url: str


_READY: set[tuple[int, str]] = set()


def ensure_accounts(session_factory: Callable[[], Session], gateway: str) -> None:
    """Open the marketplace's own ledger accounts once per database and process, in a
    transaction of their own (two first payments at once must not collide)."""
    from sqlalchemy.exc import IntegrityError

    from ..ledger.models import AccountKind
    from ..ledger.service import open_account
    from .orders import DELIVERY_FEES
    mark = (id(session_factory), gateway)
    if mark in _READY:
        return
    for code, name, kind in ((gateway_account(gateway), f"{gateway} gateway: clearing", AccountKind.EXTERNAL),
                             (IN_TRANSIT, "consumers' payments in transit", AccountKind.PAYMENTS_IN_TRANSIT),
                             (DELIVERY_FEES, "delivery fees", AccountKind.PLATFORM)):
        try:
            with session_factory() as s, s.begin():
                open_account(s, code, name, kind)
        except IntegrityError:
            pass  # opened by a concurrent first payment
    _READY.add(mark)


def start_payment(session_factory: Callable[[], Session], actor: Actor, order_id: int,
                  gateway: str = TestGateway.name, now: datetime | None = None) -> PaymentStart:
    gw = gateway_named(gateway)
    ensure_accounts(session_factory, gateway)
    with session_factory() as s, s.begin():
        order = _order(s, order_id, lock=True)  # two "pay" taps make one payment
        require_party(s, actor, order, seller=False)
        if order.state is not OrderState.PENDING_PAYMENT:
            raise Conflict(f"order {order_id} is {order.state.value}, not awaiting payment",
                           field="order_id")
        payment = s.scalar(select(Payment).where(Payment.order_id == order_id,
                                                 Payment.state == PaymentState.PENDING))
        if payment is None:
            payment = Payment(order_id=order_id, gateway=gateway, reference=f"pay_{uuid.uuid4().hex}",
                              amount_fen=order.total_fen, state=PaymentState.PENDING)
            s.add(payment)
        reference, amount = payment.reference, payment.amount_fen
    # Committed: now the gateway may be asked, with no lock held.
    return PaymentStart(order_id, reference, amount, gw.create(reference, amount))


def handle_callback(session_factory: Callable[[], Session], gateway: str, body: bytes,
                    signature: str, now: datetime | None = None) -> dict:
    """Apply a gateway's callback once.  Returns the outcome; raises for a forged,
    unknown or wrong-amount callback (after recording it)."""
    gw = gateway_named(gateway)
    now = now or utcnow()
    text = body.decode("utf-8", "replace")[:4000]

    def record(outcome: str, reference: str | None = None) -> None:
        with session_factory() as s, s.begin():
            s.add(PaymentCallback(gateway=gateway, reference=reference, body=text, outcome=outcome))

    if not gw.verify(body, signature):
        record("forged")
        raise Forged("the callback's signature is wrong; nothing was changed")
    try:
        data = json.loads(body)
        reference, amount, status = str(data["reference"]), data["amount_fen"], str(data["status"])
    except (ValueError, KeyError, TypeError):
        record("malformed")
        raise InvalidInput("the callback is not JSON with reference, amount_fen and status",
                           field="body") from None
    with session_factory() as s, s.begin():
        payment = s.scalar(select(Payment).where(Payment.reference == reference).with_for_update())
        if payment is None:
            outcome, error = "unknown", NotFound(f"no payment {reference}", field="reference")
        elif payment.state is PaymentState.CAPTURED:
            outcome, error = "duplicate", None
        elif type(amount) is not int or amount != payment.amount_fen:
            outcome, error = "wrong_amount", InvalidInput(
                f"the callback says {amount!r} fen, the payment is {payment.amount_fen}",
                field="amount_fen")
        elif status != "paid":
            payment.state = PaymentState.FAILED
            outcome, error = f"failed:{status}"[:40], None
        else:
            outcome, error = _capture(s, payment, now), None
        s.add(PaymentCallback(gateway=gateway, reference=reference, body=text, outcome=outcome))
        view = order_view(s, s.get(Order, payment.order_id)) if payment is not None else None
    if error is not None:
        raise error
    if outcome.startswith("refunded"):
        from .orders import send_pending_refunds
        send_pending_refunds(session_factory)  # after the commit, never under a lock
    return {"outcome": outcome, "order": view}


def _capture(s: Session, payment: Payment, now: datetime) -> str:
    order = s.scalar(select(Order).where(Order.id == payment.order_id).with_for_update())
    payment.state, payment.captured_at = PaymentState.CAPTURED, now
    legs = [Leg(gateway_account(payment.gateway), payment.amount_fen),
            Leg(IN_TRANSIT, -payment.amount_fen)]
    post(s, _GATEWAY_ACTOR, f"market:payment:{payment.reference}", now.date(),
         f"order {order.id}: payment", legs)
    if order.state is OrderState.EXPIRED and _take_again(s, order):
        order.state = OrderState.PENDING_PAYMENT
    if order.state is OrderState.PENDING_PAYMENT:
        order.state, order.paid_at = OrderState.PAID, now
        return "captured"
    # Paid for an order whose stock went back (expired), that was cancelled, or that
    # another payment already paid: this payment goes straight back, and only this one.
    post(s, _GATEWAY_ACTOR, f"market:payment:{payment.reference}:refund", now.date(),
         f"order {order.id}: paid after {order.state.value}, refunded",
         [Leg(IN_TRANSIT, payment.amount_fen), Leg(gateway_account(payment.gateway), -payment.amount_fen)])
    payment.state = PaymentState.REFUNDED
    if order.state in (OrderState.EXPIRED, OrderState.CANCELLED):
        order.refunded_fen += payment.amount_fen
    s.add(Refund(order_id=order.id, key=f"late:{payment.reference}", amount_fen=payment.amount_fen,
                 reason=f"paid after the order was {order.state.value}", created_by="payment-gateway"))
    return f"refunded_{order.state.value}"


def _take_again(s: Session, order: Order) -> bool:
    """An expired order paid late: take its stock again if it is still there."""
    lines = s.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).all()
    qty: dict[int, int] = {}
    for line in lines:
        qty[line.sku_id] = qty.get(line.sku_id, 0) + line.quantity
    skus = s.scalars(select(Sku).where(Sku.id.in_(list(qty))).order_by(Sku.id).with_for_update()).all()
    if any(sku.stock < qty[sku.id] for sku in skus):
        return False
    for sku in skus:
        sku.stock -= qty[sku.id]
    return True


def _gateway_actor() -> Actor:
    from ..people.access import system_actor
    return system_actor("payment-gateway")


_GATEWAY_ACTOR = _gateway_actor()
