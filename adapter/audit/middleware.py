"""The audit filters of k8s.io/apiserver's handler chain as aiohttp middlewares.

Go's order (pkg/server/config.go DefaultBuildHandlerChain), outermost first: AuditInit (audit
ID, `Audit-ID` response header), ..., Authentication (its failure handler wrapped by
WithFailedAuthenticationAudit), Audit (policy, RequestReceived, ResponseComplete, Panic),
Impersonation (the impersonated user added to the event), ..., Authorization (its decision added
as annotations). `audit_chain` lays the middlewares out the same way around ours; with audit off
it returns the authentication, impersonation and authorization middlewares alone, so requests
pay nothing for it.
"""

import base64
import binascii
import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from adapter.audit.backend import Backend
from adapter.audit.event import (
    Event,
    object_reference,
    response_status,
    source_ips,
    truncate_user_agent,
)
from adapter.audit.levels import Level, Stage
from adapter.audit.metrics import AuditMetrics
from adapter.audit.policy import Policy
from adapter.auth.authorizers import Attributes, AuthorizationError, Authorizer, Decision
from adapter.auth.credentials import peer_certificate
from adapter.auth.middleware import USER_KEY, request_info_of
from adapter.auth.user import ANONYMOUS, UserInfo
from adapter.golang.quote import go_quote
from adapter.server.middleware import error_response

__all__ = [
    "AUDIT_ID_HEADER",
    "Auditor",
    "audit_chain",
    "audit_decisions",
    "log_impersonated_user",
]

log = logging.getLogger(__name__)

AUDIT_ID_HEADER = "Audit-ID"
DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"


@dataclass(slots=True)
class _PendingEvent:
    """The event of one request while it is being served (Go mutates one Event in place):
    what the request said, at RequestReceived, and what serving it adds."""

    received: Event
    response_status: dict[str, Any] | None = None
    response_object: bytes | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    impersonated_user: UserInfo | None = None

    @property
    def level(self) -> Level:
        return self.received.level

    def at(self, stage: Stage, stage_ns: int) -> Event:
        return replace(
            self.received,
            stage=stage,
            stage_ns=stage_ns,
            response_status=self.response_status,
            response_object=self.response_object,
            annotations=dict(self.annotations),
            impersonated_user=self.impersonated_user,
        )

    def annotate(self, key: str, value: str) -> None:
        # audit.AddAuditAnnotation: the first value of a key stays.
        old = self.annotations.setdefault(key, value)
        if old != value:
            log.warning(
                "Failed to set annotations[%q] to %q for audit:%q, it has already been set to %q",
                key,
                value,
                self.received.audit_id,
                old,
            )


@dataclass(slots=True)
class _RequestAudit:
    """Shared by the init and audit filters (request state survives request.clone)."""

    audit_id: str
    received_ns: int
    # The audit filter saw the request, i.e. authentication passed.
    reached: bool = False
    event: _PendingEvent | None = None


_AUDIT_KEY = web.RequestKey("audit", _RequestAudit)
# The event of the request being served, for the authorizer wrapper (same task as the filters).
_CURRENT: contextvars.ContextVar[_PendingEvent | None] = contextvars.ContextVar(
    "audit_event", default=None
)


def _internal_error(request: web.BaseRequest, error: str) -> web.Response:
    # responsewriters.InternalError: plain text with a trailing newline.
    text = f"Internal Server Error: {go_quote(request.raw_path)}: {error}"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return web.Response(
        text=text + "\n",
        status=500,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def _auth_methods(request: web.BaseRequest) -> str:
    """getAuthMethods: which credentials a rejected request presented (never their values)."""
    methods = []
    if _is_basic_auth(request.headers.get("Authorization", "")):
        methods.append("basic")
    parts = request.headers.get("Authorization", "").strip().split(" ")
    if len(parts) > 1 and parts[0].lower() == "bearer":
        methods.append("bearer")
    if request.query.get("access_token", "").strip():
        methods.append("access_token")
    if peer_certificate(request) is not None:
        methods.append("x509")
    if methods:
        return "Authentication failed, attempted: " + ", ".join(methods)
    return "Authentication failed, no credentials provided"


def _is_basic_auth(header: str) -> bool:
    """net/http Request.BasicAuth's parse succeeds."""
    if len(header) < 6 or header[:6].lower() != "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:], validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _json_body(response: web.StreamResponse) -> bytes | None:
    if not isinstance(response, web.Response) or "json" not in response.content_type:
        return None
    body = response.body
    return body if isinstance(body, bytes) and body else None


class Auditor:
    """The policy and the backend, and the filters that feed one from the other."""

    def __init__(
        self,
        policy: Policy,
        backend: Backend,
        metrics: AuditMetrics,
        *,
        clock: Callable[[], int] = time.time_ns,
        new_audit_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.policy = policy
        self.backend = backend
        self.metrics = metrics
        self._clock = clock
        self._new_audit_id = new_audit_id

    def start(self) -> None:
        self.backend.start()

    async def close(self) -> None:
        await self.backend.shutdown()

    # --- events ----------------------------------------------------------------------------

    def _pending(
        self, request: web.Request, state: _RequestAudit, level: Level, user: UserInfo | None
    ) -> _PendingEvent:
        """NewEventFromRequest / LogRequestMetadata."""
        info = request_info_of(request)
        headers = request.headers
        received = Event(
            level=level,
            audit_id=state.audit_id,
            stage=Stage.REQUEST_RECEIVED,
            request_uri=request.raw_path,
            verb=info.verb,
            user=user,
            source_ips=source_ips(
                headers.get("X-Forwarded-For"), headers.get("X-Real-Ip"), request.remote
            ),
            user_agent=truncate_user_agent(headers.get("User-Agent", "")),
            object_ref=object_reference(info),
            request_received_ns=state.received_ns,
            stage_ns=state.received_ns,
        )
        return _PendingEvent(received)

    async def _emit(
        self,
        event: _PendingEvent,
        stage: Stage,
        omit: frozenset[Stage],
        stage_ns: int | None = None,
    ) -> bool:
        """processAuditEvent: skip omitted stages, stamp, count, hand to the backend."""
        if stage in omit:
            return True
        self.metrics.events.inc()
        stamp = self._clock() if stage_ns is None else stage_ns
        return await self.backend.process((event.at(stage, stamp),))

    @staticmethod
    def _record_response(
        event: _PendingEvent, request: web.BaseRequest, response: web.StreamResponse
    ) -> None:
        """The response writer's code, and LogResponseObject: a Status response's fields, and
        at RequestResponse the object itself (for what Go writes through its serializer:
        Kubernetes objects, not /version or the OpenAPI documents)."""
        want_object = event.level is Level.REQUEST_RESPONSE and not request.path.startswith(
            "/openapi/"
        )
        body = _json_body(response) if want_object or response.status >= 300 else None
        doc: Any = None
        if body is not None:
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                doc = None
        if not isinstance(doc, dict):
            doc = None
        previous = event.response_status or {}
        event.response_status = response_status(response.status, doc)
        if doc is None or doc.get("kind") != "Status":
            # Not a Status: what was set before (e.g. the failed authentication message) stays.
            event.response_status = {**previous, **event.response_status}
        if want_object and body is not None and doc is not None and "kind" in doc:
            # Compact, as Go's encoder re-encodes the object; ours is compact unless ?pretty.
            event.response_object = body if b"\n" not in body else orjson.dumps(doc)

    # --- filters ---------------------------------------------------------------------------

    @property
    def init_middleware(self) -> Middleware:
        """WithAuditInit, plus WithFailedAuthenticationAudit for the requests authentication
        turned away (a 401 that never reached the audit filter)."""

        @web.middleware
        async def audit_init(request: web.Request, handler: Handler) -> web.StreamResponse:
            state = _RequestAudit(
                request.headers.get(AUDIT_ID_HEADER) or self._new_audit_id(), self._clock()
            )
            request[_AUDIT_KEY] = state
            response = await handler(request)
            if not state.reached and response.status == 401:
                await self._audit_failed_authentication(request, state, response)
            if not response.prepared and AUDIT_ID_HEADER not in response.headers:
                response.headers[AUDIT_ID_HEADER] = state.audit_id
            return response

        return audit_init

    async def _audit_failed_authentication(
        self, request: web.Request, state: _RequestAudit, response: web.StreamResponse
    ) -> None:
        config = self.policy.evaluate(None, request_info_of(request))
        self.metrics.observe_level(config.level)
        if config.level is Level.NONE:
            return
        event = self._pending(request, state, config.level, None)
        event.response_status = {"metadata": {}, "message": _auth_methods(request)}
        self._record_response(event, request, response)
        # Go sends this event when the 401 is written: stage ResponseStarted, and no other.
        await self._emit(event, Stage.RESPONSE_STARTED, config.omit_stages)

    def audit_middleware(self, unauthenticated: UserInfo | None = None) -> Middleware:
        """WithAudit. `unauthenticated`: the user of requests no authentication filter
        identified (None in cluster mode, where authentication always runs first)."""

        @web.middleware
        async def audit(request: web.Request, handler: Handler) -> web.StreamResponse:
            state = request.get(_AUDIT_KEY)
            if state is None:  # the init filter is missing: a wiring bug, audit anyway
                state = _RequestAudit(self._new_audit_id(), self._clock())
            state.reached = True
            user = request.get(USER_KEY) or unauthenticated
            config = self.policy.evaluate(user, request_info_of(request))
            self.metrics.observe_level(config.level)
            if config.level is Level.NONE:
                return await handler(request)
            event = state.event = self._pending(request, state, config.level, user)
            omit = config.omit_stages
            # RequestReceived is stamped with the time the request arrived.
            stored = await self._emit(event, Stage.REQUEST_RECEIVED, omit, state.received_ns)
            if not stored:
                self.metrics.rejected.inc()
                return _internal_error(request, "failed to store audit event")
            token = _CURRENT.set(event)
            try:
                response = await handler(request)
            except Exception as exc:
                error = error_response(request, exc)
                if error is None:
                    event.response_status = {
                        "metadata": {},
                        "status": "Failure",
                        "message": f"APIServer panic'd: {exc}",
                        "reason": "InternalError",
                        "code": 500,
                    }
                    await self._emit(event, Stage.PANIC, omit)
                    raise
                response = error
            finally:
                _CURRENT.reset(token)
            self._record_response(event, request, response)
            await self._emit(event, Stage.RESPONSE_COMPLETE, omit)
            return response

        return audit


class _DecisionAnnotatingAuthorizer:
    """WithAuthorization's audit annotations: decision allow/forbid and the reason, or only
    the reason "internal error" when no decision could be made."""

    def __init__(self, inner: Authorizer) -> None:
        self._inner = inner

    async def authorize(self, attributes: Attributes) -> Decision:
        try:
            decision = await self._inner.authorize(attributes)
        except AuthorizationError:
            event = _CURRENT.get()
            if event is not None:
                event.annotate(REASON_ANNOTATION, "internal error")
            raise
        event = _CURRENT.get()
        if event is not None:
            event.annotate(DECISION_ANNOTATION, "allow" if decision.allowed else "forbid")
            event.annotate(REASON_ANNOTATION, decision.reason)
        return decision


def log_impersonated_user(user: UserInfo) -> None:
    """audit.LogImpersonatedUser: the user the request being served acts as, on its event
    (nothing when the request is not audited)."""
    event = _CURRENT.get()
    if event is not None:
        event.impersonated_user = user


def audit_decisions(auditor: Auditor | None, authorizer: Authorizer) -> Authorizer:
    """The authorizer, annotating audit events with its decisions when auditing is on."""
    return authorizer if auditor is None else _DecisionAnnotatingAuthorizer(authorizer)


def audit_chain(
    auditor: Auditor | None,
    authentication: Middleware | None = None,
    authorization: Middleware | None = None,
    *,
    impersonation: Middleware | None = None,
) -> list[Middleware]:
    """The filters in Go's order: AuditInit, Authentication, Audit, Impersonation,
    Authorization. Without authentication (--no-cluster) requests are audited as Go's
    anonymous user."""
    present: Sequence[Middleware | None]
    if auditor is None:
        present = (authentication, impersonation, authorization)
    else:
        unauthenticated = None if authentication is not None else ANONYMOUS
        present = (
            auditor.init_middleware,
            authentication,
            auditor.audit_middleware(unauthenticated),
            impersonation,
            authorization,
        )
    return [m for m in present if m is not None]
