"""Credentials kept out of logs and answers, in every form in which they are sent.

One credential leaves the adapter in several spellings: `--prometheus-url=http://user:pass@h`
is sent as `Authorization: Basic base64(user:pass)` and was typed percent-encoded; a token is
sent after `Bearer `. An upstream that echoes a request header back may quote any of them,
and our error messages quote the start of a body (cut short) through repr() (escaped). The
`*_forms` functions list the spellings of a credential; `redact` is the one function every
error message from an upstream goes through before it reaches a log or an answer.
"""

import base64
import binascii
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

import orjson
from yarl import URL

__all__ = [
    "REDACTED",
    "authorization_forms",
    "basic_auth_forms",
    "header_forms",
    "redact",
    "secret_forms",
    "url_credential_forms",
]

REDACTED = "<redacted>"

# The shortest start of a credential that `redact` removes where a cut ends it: shorter ones
# say little about the credential and would match ordinary words too often.
_MIN_CUT_PREFIX = 4
# Where a quoted start of a body ends: repr()'s closing quote (or the end of the text).
_CUT_ENDS = "'\""
# Characters left alone by the usual percent-encoders: none (quote_plus), "/" (quote's
# default), RFC 3986's sub-delims (what a URL's user info may hold unencoded).
_PERCENT_SAFE = ("", "/", "!$&'()*+,;=")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")
# Header names whose values are credentials (Authorization, X-Api-Key, Cookie, ...).
_SECRET_HEADER_NAME = re.compile(
    r"authorization|token|secret|key|passw(or)?d|cookie|credential|session|signature", re.I
)


def secret_forms(secret: str) -> frozenset[str]:
    """`secret` as text may hold it: plain, percent-encoded (URL, form), and escaped as repr()
    and JSON escape it."""
    if not secret:
        return frozenset()
    # repr() of a text holding both quote kinds escapes ' (the appended quotes force it);
    # of a text holding only ' it does not.
    single_quoted = repr(secret + "'\"")[1:-4]
    percent_encoded = {quote(secret, safe=safe) for safe in _PERCENT_SAFE} | {
        quote_plus(secret, safe="")
    }
    forms = {
        secret,
        *percent_encoded,
        *(_PERCENT_ESCAPE.sub(lambda m: m.group().lower(), form) for form in percent_encoded),
        single_quoted,
        single_quoted.replace("\\'", "'"),
        orjson.dumps(secret).decode()[1:-1],
    }
    return frozenset(form for form in forms if form)


def basic_auth_forms(username: str, password: str) -> frozenset[str]:
    """A Basic credential: base64(user:pass) (UTF-8 as sent, Latin-1 as some clients send
    it), `user:pass`, and the password alone. The user name alone is not a secret, unless
    there is no password: then it is the credential."""
    pair = f"{username}:{password}"
    forms: set[str] = set()
    for encoding in ("utf-8", "latin-1"):
        try:
            forms.add(base64.b64encode(pair.encode(encoding)).decode("ascii"))
        except UnicodeEncodeError:
            continue
    forms |= secret_forms(password) if password else secret_forms(username)
    if password:
        forms |= secret_forms(pair)
        forms.add(f"{quote(username, safe='')}:{quote(password, safe='')}")
    return frozenset(forms)


def authorization_forms(value: str) -> frozenset[str]:
    """An Authorization or Proxy-Authorization value: its credential (what follows the scheme,
    or the whole value without one), and for Basic the decoded `user:pass` forms. The scheme
    itself stays readable: "Bearer <redacted>" says which credential was sent."""
    value = value.strip()
    scheme, _, credential = value.partition(" ")
    credential = credential.strip()
    if not credential:
        return secret_forms(value)
    forms = set(secret_forms(credential))
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        user, colon, password = decoded.partition(":")
        if colon:
            forms |= basic_auth_forms(user, password)
    return frozenset(forms)


def header_forms(name: str, value: str) -> frozenset[str]:
    """The credential forms of a header sent to an upstream (`--prometheus-header`); none for
    headers that do not carry credentials (X-Scope-OrgID names a tenant, it is no secret)."""
    if not _SECRET_HEADER_NAME.search(name):
        return frozenset()
    return authorization_forms(value)


def url_credential_forms(url: URL) -> frozenset[str]:
    """The credentials of a URL's `user:pass@`: those of the Basic header made from them, and
    their percent-encoded spelling as typed."""
    if url.user is None:
        return frozenset()
    forms = set(basic_auth_forms(url.user, url.password or ""))
    if url.raw_password:
        forms |= {url.raw_password, f"{url.raw_user}:{url.raw_password}"}
    elif url.raw_user:
        forms.add(url.raw_user)
    return frozenset(forms)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret in `secrets` (forms, as listed by the functions above)
    replaced by <redacted>, longest first; and the start of a secret that a closing quote or
    the end of the text cuts off (a quoted start of a body ends in the middle of a header)."""
    forms = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    if not text or not forms:
        return text
    for form in forms:
        if form in text:
            text = text.replace(form, REDACTED)
    cuts = [i for i, char in enumerate(text) if char in _CUT_ENDS]
    cuts.append(len(text))
    for end in reversed(cuts):  # from the right, so that earlier positions stay valid
        start = _cut_secret_start(text, end, forms)
        if start is not None:
            text = text[:start] + REDACTED + text[end:]
    return text


def _cut_secret_start(text: str, end: int, forms: list[str]) -> int | None:
    """Where the longest start of a form that ends at `end` begins, if any."""
    best: int | None = None
    for form in forms:
        longest = min(len(form) - 1, end)
        if longest < _MIN_CUT_PREFIX:
            continue
        window = text[end - longest : end]
        if form[:_MIN_CUT_PREFIX] not in window:
            continue  # the cheap test first: most forms are nowhere near
        for length in range(longest, _MIN_CUT_PREFIX - 1, -1):
            if window.endswith(form[:length]):
                if best is None or end - length < best:
                    best = end - length
                break
    return best
