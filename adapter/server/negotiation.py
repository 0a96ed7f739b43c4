"""Content negotiation as k8s.io/apiserver does it (`handlers/negotiation`, `goautoneg`).

An Accept header is parsed and ordered as goautoneg orders it; the first clause that one of the
server's media types satisfies, with parameters the endpoint allows, wins. Parameters `as`, `g`
and `v` ask for a conversion (a `meta.k8s.io` Table or PartialObjectMetadata), which only some
endpoints allow. No match is a 406.

The server's media types are Go's: JSON, YAML and protobuf. Protobuf is negotiated as Go does
(so the same clause wins), but answered in JSON, which every Kubernetes client decodes.
"""

import functools
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "JSON",
    "LIST_ROUTE_MEDIA_TYPES",
    "PROTOBUF",
    "ROUTE_MEDIA_TYPES",
    "YAML",
    "AcceptClause",
    "Conversion",
    "Endpoint",
    "MediaType",
    "Negotiated",
    "negotiate",
    "not_acceptable_message",
    "parse_accept",
]

_META_GROUP = "meta.k8s.io"
_META_VERSIONS = ("v1", "v1beta1")


@dataclass(frozen=True, slots=True)
class MediaType:
    type: str
    subtype: str

    @property
    def name(self) -> str:
        return f"{self.type}/{self.subtype}"


JSON = MediaType("application", "json")
YAML = MediaType("application", "yaml")
PROTOBUF = MediaType("application", "vnd.kubernetes.protobuf")
# runtime.NegotiatedSerializer.SupportedMediaTypes() of the Go adapter's codecs, in order.
_SUPPORTED = (JSON, YAML, PROTOBUF)
# Serializers with a stream (watch) variant; `stream=watch` is refused for the others.
_STREAMING = frozenset({JSON, PROTOBUF})


def not_acceptable_message() -> str:
    """negotiation.NewNotAcceptableError(MediaTypesForSerializer(...)).Error()."""
    return "only the following media types are accepted: " + ", ".join(m.name for m in _SUPPORTED)


@dataclass(frozen=True, slots=True)
class AcceptClause:
    """One media range of an Accept header (goautoneg.Accept)."""

    type: str
    subtype: str
    q: float
    params: tuple[tuple[str, str], ...]


def _parse_q(text: str) -> float:
    # strconv.ParseFloat(s, 32) with its error ignored: what Go cannot parse is 0.
    if text != text.strip() or "_" in text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        return 0.0


def _less(a: AcceptClause, b: AcceptClause) -> bool:
    """goautoneg's accept_slice.Less, quirks included."""
    if a.q > b.q:
        return True
    if a.type != "*" and b.type == "*":
        return True
    return a.subtype != "*" and b.subtype == "*"


def parse_accept(header: str) -> list[AcceptClause]:
    """goautoneg.ParseAccept: clauses ordered by preference. Go's sort.Sort runs an insertion
    sort on up to 12 elements, which this reproduces (longer headers do not occur)."""
    clauses: list[AcceptClause] = []
    for raw_part in header.split(","):
        media_range, *raw_params = raw_part.strip(" ").split(";")
        pieces = media_range.split("/")
        main = pieces[0].strip(" ")
        if len(pieces) == 1 and main == "*":
            sub = "*"
        elif len(pieces) == 2:
            sub = pieces[1].strip(" ")
        else:
            continue
        q = 1.0
        params: dict[str, str] = {}
        for param in raw_params:
            key, sep, value = param.partition("=")
            if not sep:
                continue
            key = key.strip(" ")
            if key == "q":
                q = _parse_q(value)
            else:
                params[key] = value.strip(" ")
        clauses.append(AcceptClause(main, sub, q, tuple(params.items())))
    for i in range(1, len(clauses)):
        j = i
        while j > 0 and _less(clauses[j], clauses[j - 1]):
            clauses[j], clauses[j - 1] = clauses[j - 1], clauses[j]
            j -= 1
    return clauses


@dataclass(frozen=True, slots=True)
class Conversion:
    """The object a client asked to receive instead (`as`, `g`, `v` parameters)."""

    kind: str
    group: str
    version: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class Endpoint(Enum):
    """What an endpoint lets a client convert its answer to (EndpointRestrictions)."""

    # DefaultEndpointRestrictions: discovery, errors, custom and external metrics.
    PLAIN = "plain"
    # metrics.k8s.io (a RequestScope with a TableConvertor): Table in JSON or YAML, and
    # PartialObjectMetadata(List).
    CONVERTIBLE = "convertible"


def _allows(endpoint: Endpoint, media: MediaType, convert: Conversion | None) -> bool:
    """RequestScope.AllowsMediaTypeTransform / emptyEndpointRestrictions."""
    if convert is None:
        return True
    if endpoint is Endpoint.PLAIN:
        return False
    if convert.group != _META_GROUP or convert.version not in _META_VERSIONS:
        return False
    if convert.kind == "Table":
        return media in (JSON, YAML)
    return convert.kind in ("PartialObjectMetadata", "PartialObjectMetadataList")


@dataclass(frozen=True, slots=True)
class Negotiated:
    media: MediaType
    pretty: bool = False  # the `pretty=1` media type parameter
    convert: Conversion | None = None


def _options(
    params: tuple[tuple[str, str], ...], media: MediaType, endpoint: Endpoint
) -> Negotiated | None:
    """acceptMediaTypeOptions: the clause's parameters, or None when they rule it out."""
    fields = {"as": "", "g": "", "v": ""}
    converting = pretty = False
    for key, value in params:
        if key in fields:
            fields[key] = value
            converting = True
        elif key == "stream":
            if value and (media not in _STREAMING or value != "watch"):
                return None
        elif key == "sv":
            # No endpoint here allows choosing the server's version.
            if value:
                return None
        elif key == "pretty":
            pretty = value == "1"
    convert = Conversion(fields["as"], fields["g"], fields["v"]) if converting else None
    if not _allows(endpoint, media, convert):
        return None
    return Negotiated(media, pretty, convert)


@functools.lru_cache(maxsize=1024)
def negotiate(accept: str, endpoint: Endpoint) -> Negotiated | None:
    """NegotiateMediaTypeOptions: the representation to answer with; None is a 406. An empty
    header means JSON. Cached: clients send the same few headers again and again."""
    if not accept:
        return Negotiated(JSON)
    for clause in parse_accept(accept):
        for media in _SUPPORTED:
            if (clause.type, clause.subtype) in (
                (media.type, media.subtype),
                (media.type, "*"),
                ("*", "*"),
            ):
                chosen = _options(clause.params, media, endpoint)
                if chosen is not None:
                    return chosen
    return None


# The Produces of go-restful routes: a GET route's, and a list route's (which adds watch streams).
ROUTE_MEDIA_TYPES = tuple(m.name for m in _SUPPORTED)
LIST_ROUTE_MEDIA_TYPES = (
    *ROUTE_MEDIA_TYPES,
    *(f"{m.name};stream=watch" for m in _SUPPORTED if m in _STREAMING),
)


def route_accepts(accept: str, produces: tuple[str, ...]) -> bool:
    """go-restful's Route.matchesAccept, which runs before any handler: parameters and q are
    cut off, and only an exact type or a literal `*/*` matches (`application/*` does not)."""
    for entry in (accept or "*/*").split(","):
        media = entry.partition(";")[0].strip(" ")
        if media == "*/*" or media in produces or "*/*" in produces:
            return True
    return False
