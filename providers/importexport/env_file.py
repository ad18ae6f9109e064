"""What a `.env` file describes: its variables, matched against the conventions in the kind
registry (`ProviderKind.env_conventions`), each value checked with the dashboard's validators,
and a name for every provider. Nothing here writes; `env_import` applies the result.
"""

from __future__ import annotations

import io
import ipaddress
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from .. import crypto, kinds
from ..models import Provider
from ..validators import (
    provider_name_from,
    validate_base_url,
    validate_header,
    validate_provider_name,
)

IGNORED_UNKNOWN = "not a variable this import knows"
IGNORED_EMPTY = "no value"
IGNORED_SUPERSEDED = "{used} is used instead"
IGNORED_ALONE = "used only together with {needed}"
IGNORED_DUPLICATE = "describes the same provider as {first}"
NAME_UNUSABLE = (
    "{var}: no letter or digit to make the provider's address name from; write a name such as "
    "Together or Custom Provider."
)
ENABLED_INVALID = "{var}: write true or false."
TIMEOUT_INVALID = "{var}: write a number of seconds, e.g. 60."
RETRIES_INVALID = "{var}: write a whole number of retries, e.g. 2."
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}
KEY_FILE_NOT_READ = (
    "{var} names a file on the server, which the dashboard's import does not read: paste the "
    "key on the provider's form, or import the file with `python manage.py routing import-env`."
)
KEY_FILE_UNREADABLE = "{var}: the file it names cannot be read ({reason})."
KEY_FILE_TOO_LARGE = "{var}: the file it names is larger than {limit} KB; is it a key file?"
MAX_KEY_FILE_BYTES = 64 * 1024
HEADERS_INVALID = (
    '{var}: not a JSON object of header names and text values, e.g. {{"X-Org-Id": "acme"}}.'
)

_GENERIC_HOST_LABELS = {"api", "www"}
# A server bound to every interface is reached on this machine through loopback.
_THIS_MACHINE = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Skip(Exception):
    """A value cannot be used; the message names its variable and never holds the value."""


@dataclass
class Candidate:
    """One provider the file describes, through one convention of one kind."""

    kind: kinds.ProviderKind
    convention: kinds.EnvConvention
    given: dict[str, str]  # field -> value, only what the file sets
    sources: dict[str, str]  # field -> the variable it comes (or would come) from
    name: str = ""
    display_name: str | None = None  # None: the file gives none, leave it as it is
    headers: dict[str, str] | None = None
    # enabled / timeout / max_retries, parsed; only what the file gives.
    settings: dict[str, object] = field(default_factory=dict)
    # The kind's own settings (Provider.options) the file gives.
    options: dict[str, str] = field(default_factory=dict)
    problem: str = ""  # why it is skipped
    duplicate: bool = False
    # The kind whose convention this is: `kind` changes when, e.g., OPENAI_BASE_URL points
    # elsewhere, but OPENAI_* stay the variables of openai/, not of openai_compat/.
    home: kinds.ProviderKind = field(init=False)

    def __post_init__(self) -> None:
        self.home = self.kind

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(self.sources[f] for f in self.given)

    @property
    def default_model(self) -> str:
        return self.given.get("default_model", "")

    @property
    def label(self) -> str:
        if self.name and self.display_name:
            return f"provider {self.name} ({self.display_name}, {self.kind.label})"
        if self.name:
            return f"provider {self.name} ({self.kind.label})"
        return f"{self.kind.label} ({', '.join(self.variables)})"

    @property
    def effective_base_url(self) -> str:
        default = self.kind.default_base_url_for(self.options)
        return (self.given.get("base_url") or default).rstrip("/")

    @property
    def identity(self) -> tuple:
        headers = tuple(sorted((self.headers or {}).items()))
        key, version = self.given.get("api_key"), self.given.get("api_version")
        options = tuple(sorted(self.options.items()))
        return (self.kind.slug, self.effective_base_url, key, version, headers, options)


@dataclass
class EnvFile:
    values: dict[str, str | None]
    unreadable: list[int]  # numbers of the lines that are not NAME=value
    candidates: list[Candidate] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    reasons: dict[str, str] = field(default_factory=dict)  # why a variable is not used
    warnings: list[str] = field(default_factory=list)

    def value(self, var: str) -> str:
        return (self.values.get(var) or "").strip()

    def ignored(self) -> list[tuple[str, str]]:
        """(variable, reason) for every variable that describes nothing."""
        return [
            (var, self.reasons.get(var, IGNORED_UNKNOWN) if self.value(var) else IGNORED_EMPTY)
            for var in self.values
            if var not in self.used
        ]


def read_env_file(text: str, *, read_files: bool = False) -> EnvFile:
    """The providers `text` describes, each value checked (no database access). Key files
    (GOOGLE_APPLICATION_CREDENTIALS) are read only with `read_files`: the command line's."""
    env = EnvFile(*_read(text))
    env.candidates = _collect(env.values, env.used, env.reasons)
    for c in env.candidates:
        _check(c, env.warnings, read_files=read_files)
    return env


def assign_names(env: EnvFile) -> None:
    _name_all(env.candidates, env.used, env.reasons)


# --- Reading the file ----------------------------------------------------------------------


def _read(text: str) -> tuple[dict[str, str | None], list[int]]:
    """The file's variables, and the numbers of the lines that are not NAME=value. No ${VAR}
    interpolation: it would copy this server's own environment into a provider's key."""
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    broken = [b.original.line for b in parse_stream(io.StringIO(text)) if b.error]
    return dict(values), broken


def _slots(conv: kinds.EnvConvention) -> dict[str, tuple[str, ...]]:
    return {
        "api_key": conv.api_key,
        "base_url": conv.base_url,
        "api_version": conv.api_version,
        "name": (conv.name,) if conv.name else (),
        "headers": (conv.headers,) if conv.headers else (),
        "enabled": (conv.enabled,) if conv.enabled else (),
        "default_model": conv.default_model,
        "timeout": (conv.timeout,) if conv.timeout else (),
        "max_retries": (conv.max_retries,) if conv.max_retries else (),
        "api_key_file": conv.api_key_file,
        # A kind's settings under their own names, as the service reports their errors.
        **dict(conv.options),
    }


def _collect(values: dict, used: set[str], reasons: dict[str, str]) -> list[Candidate]:
    """A candidate for each convention the file uses, in registry order."""
    candidates = []
    for kind in kinds.KINDS.values():
        for conv in kind.env_conventions:
            given, sources = {}, {}
            for fld, names in _slots(conv).items():
                present = [n for n in names if (values.get(n) or "").strip()]
                if names:
                    sources[fld] = present[0] if present else names[0]
                if present:
                    given[fld] = values[present[0]].strip()
                    for other in present[1:]:
                        reasons.setdefault(other, IGNORED_SUPERSEDED.format(used=present[0]))
            if given.keys() & {"api_key", "api_key_file", "base_url"}:
                candidates.append(Candidate(kind, conv, given, sources))
                used.update(sources[f] for f in given)
            else:
                needed = " or ".join(conv.api_key + conv.api_key_file + conv.base_url)
                for var in conv.variables:
                    reasons.setdefault(var, IGNORED_ALONE.format(needed=needed))
    return candidates


# --- Checking values with the dashboard's validators -----------------------------------------


def _same_url(a: str, b: str) -> bool:
    def parts(url: str) -> tuple:
        p = urlsplit(url)
        scheme = p.scheme.lower()
        return scheme, p.hostname, p.port or _DEFAULT_PORTS.get(scheme), p.path.rstrip("/")

    try:
        return bool(b) and parts(a) == parts(b)
    except ValueError:
        return False


def _local_url(value: str, kind: kinds.ProviderKind) -> str:
    """Local servers are often given as host:port (OLLAMA_HOST=0.0.0.0:11434): the scheme,
    port and path come from the kind's default, and a bind-all address means this machine."""
    bare = "://" not in value
    url = "http://" + value if bare else value
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return url
    if "@" in parts.netloc or "?" in url or "#" in url:
        return url  # refused by the validator, with its reason
    path = parts.path.rstrip("/")
    default = urlsplit(kind.default_base_url)
    if bare:
        port = port or default.port
    # LMSTUDIO_BASE_URL=http://localhost:1234 means the server, whose API is below /v1.
    path = path or default.path
    host = _THIS_MACHINE.get(host, f"[{host}]" if ":" in host else host)
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{path}"


def _fail(c: Candidate, fld: str, exc: ValidationError) -> Skip:
    return Skip(f"{c.sources[fld]}: {' '.join(exc.messages)}")


def _check_base_url(c: Candidate, warnings: list[str]) -> None:
    url = c.given.get("base_url")
    if url is None:
        return
    if c.kind.local:
        url = _local_url(url, c.kind)
    suffix = c.convention.base_url_drop_suffix
    if suffix and url.rstrip("/").endswith(suffix):
        url = url.rstrip("/").removesuffix(suffix)
    if c.convention.other_host_kind and not _same_url(url, c.kind.default_base_url):
        c.kind = kinds.KINDS[c.convention.other_host_kind]
    try:
        checked = validate_base_url(url, local=c.kind.local)
    except ValidationError as exc:
        raise _fail(c, "base_url", exc) from None
    warnings.extend(f"{c.sources['base_url']}: {w}" for w in checked.warnings)
    # Blank means the kind's default, as a provider added on the dashboard stores it.
    c.given["base_url"] = "" if _same_url(checked.url, c.kind.default_base_url) else checked.url


def _check_headers(c: Candidate) -> None:
    raw = c.given.get("headers")
    if raw is None:
        return
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise Skip(HEADERS_INVALID.format(var=c.sources["headers"]))
    try:
        c.headers = dict(validate_header(name, value) for name, value in data.items())
    except ValidationError as exc:
        raise _fail(c, "headers", exc) from None


def _check_name(c: Candidate) -> None:
    """The file's name is the display name; the address name is derived from it."""
    given = c.given.get("name")
    if given is None:
        return
    name = provider_name_from(given)
    if not name:
        raise Skip(NAME_UNUSABLE.format(var=c.sources["name"]))
    try:
        c.name = validate_provider_name(name)
    except ValidationError as exc:
        raise _fail(c, "name", exc) from None
    c.display_name = given if given != name else None
    c.sources["display_name"] = c.sources["name"]


def _check_settings(c: Candidate) -> None:
    if (raw := c.given.get("enabled")) is not None:
        if raw.lower() not in _TRUE | _FALSE:
            raise Skip(ENABLED_INVALID.format(var=c.sources["enabled"]))
        c.settings["enabled"] = raw.lower() in _TRUE
    if (raw := c.given.get("timeout")) is not None:
        try:
            c.settings["timeout"] = float(raw)
        except ValueError:
            raise Skip(TIMEOUT_INVALID.format(var=c.sources["timeout"])) from None
    if (raw := c.given.get("max_retries")) is not None:
        try:
            c.settings["max_retries"] = int(raw)
        except ValueError:
            raise Skip(RETRIES_INVALID.format(var=c.sources["max_retries"])) from None


def _check_key(c: Candidate, read_files: bool) -> None:
    """A key read from the file a variable names, and any key as the kind stores it."""
    path = c.given.pop("api_key_file", None)
    if path is not None:
        var = c.sources["api_key_file"]
        if not read_files:
            raise Skip(KEY_FILE_NOT_READ.format(var=var))
        c.given["api_key"] = _read_key_file(path, var)
        c.sources["api_key"] = var
    if c.given.get("api_key"):
        try:
            c.given["api_key"] = c.kind.clean_api_key(c.given["api_key"])
        except ValidationError as exc:
            raise _fail(c, "api_key", exc) from None
    names = {setting.name for setting in c.kind.fields}
    c.options = {name: c.given[name] for name in names if name in c.given}


def _read_key_file(path: str, var: str) -> str:
    import os

    try:
        if os.path.getsize(path) > MAX_KEY_FILE_BYTES:
            limit = MAX_KEY_FILE_BYTES // 1024
            raise Skip(KEY_FILE_TOO_LARGE.format(var=var, limit=limit))
        with open(path, encoding="utf-8-sig") as file:
            return file.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise Skip(KEY_FILE_UNREADABLE.format(var=var, reason=reason)) from None


def _check(c: Candidate, warnings: list[str], *, read_files: bool = False) -> None:
    try:
        _check_key(c, read_files)
        _check_base_url(c, warnings)
        _check_headers(c)
        _check_name(c)
        _check_settings(c)
    except Skip as exc:
        c.problem = str(exc)
    if c.given.get("api_key") == c.kind.placeholder_api_key:
        c.given["api_key"] = ""  # e.g. VLLM_API_KEY=EMPTY: the kind sends it anyway


# --- Names -------------------------------------------------------------------------------------


def stored(read) -> object:
    try:
        return read()
    except crypto.UndecryptableSecret:
        return None


def _matches(p: Provider, c: Candidate) -> bool:
    """Whether `p` is the provider `c` describes, though under another name."""
    if p.kind != c.kind.slug:
        return False
    if "base_url" in c.given and p.effective_base_url.rstrip("/") != c.effective_base_url:
        return False
    if "api_key" in c.given:
        return stored(p.get_api_key) == c.given["api_key"]
    return "base_url" in c.given


def _host_label(c: Candidate) -> str:
    host = urlsplit(c.given.get("base_url") or "").hostname or ""
    try:
        ipaddress.ip_address(host)
        return ""
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) > 1:
        host = next((x for x in labels[:-1] if x not in _GENERIC_HOST_LABELS), labels[0])
    return "" if host == "localhost" else provider_name_from(host)[:56].rstrip("-_")


def _derived_name(c: Candidate, kind_of: dict[str, str], taken: set[str]) -> str:
    base = _host_label(c) or c.kind.slug
    name, n = base, 2
    # A provider of another kind is not this one: never update it under a guessed name.
    while name in taken or kind_of.get(name, c.kind.slug) != c.kind.slug:
        name, n = f"{base}-{n}", n + 1
    return name


def _name_all(candidates: list[Candidate], used: set[str], reasons: dict[str, str]) -> None:
    existing = list(Provider.objects.order_by("name"))
    kind_of = {p.name: p.kind for p in existing}
    valid = [c for c in candidates if not c.problem]
    taken = {c.name for c in valid if c.name}
    first: dict[tuple, Candidate] = {}
    for c in valid:
        if c.identity in first and not c.name:
            c.duplicate, same = True, first[c.identity].variables
            extra = set(c.variables) - set(same)
            used.difference_update(extra)
            reasons.update({v: IGNORED_DUPLICATE.format(first=same[0]) for v in extra})
            continue
        first.setdefault(c.identity, c)
        if not c.name:
            match = next((p for p in existing if p.name not in taken and _matches(p, c)), None)
            c.name = match.name if match else _derived_name(c, kind_of, taken)
            taken.add(c.name)
