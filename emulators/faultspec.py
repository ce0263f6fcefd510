"""Fault specs shared by both emulators: grammar, parsing and the seeded decision engine.

Grammar (one string, usable from the CLI and from Python)::

    SPEC  := RULE ("," RULE)*
    RULE  := KIND [":" RATE] ("@" KEY "=" VALUE)*
    more parameters of the previous rule may follow as separate ",KEY=VALUE" items,
    and extra numbers after ``calls=`` continue its list: ``churn@calls=3,5,delete=2``.

Examples::

    503:0.02,429:0.01@retry_after=1,reset:0.005,slow:0.01@delay=5,churn@calls=3,401@after=40
    INVALID_ARGUMENT@method=CloudService.create@match=vm-0007

When a rule fires (per *eligible* request, i.e. one that matches its selectors; counted per rule):

* ``RATE`` (0..1): with that probability, drawn from ``random.Random(seed)``;
* ``calls=N[,M...]`` (also ``N+M`` / ``N|M``): on the N-th, M-th eligible request (1-based);
* ``after=N``: on every eligible request after the N-th (event kinds such as a token
  expiry or a restart fire once, on request N+1);
* ``times=K``: at most K times in all;
* none of these: on every eligible request.

Conditions combine (``503:0.5@after=10`` = half of the requests after the 10th).
Selectors: ``path=`` (substring of the HTTP path), ``method=`` (HTTP method or RPC name
such as ``CloudService.create``; ``fnmatch`` patterns allowed), ``match=`` (substring
of the serialized request); several alternatives separated by ``|``.
Bad specs raise ``ValueError`` naming the offending part.
"""
from __future__ import annotations

import collections
import fnmatch
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

Converter = Callable[[str], Any]

COMMON_PARAMS = frozenset({"calls", "after", "times"})
_PARAM_ITEM = re.compile(r"^[a-z_]+=")
_PARAM_SPLIT = re.compile(r"@(?=[A-Za-z_]+=)")


def nonneg_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{text!r} is not a finite number >= 0")
    return value


def nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{text!r} is not an integer >= 0")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{text!r} is not strictly between 0 and 1")
    return value


def one_of(*choices: str) -> Converter:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"{text!r} is not one of {list(choices)}")
        return text
    return parse


@dataclass
class FaultRule:
    """One parsed rule plus its runtime counters."""

    kind: str
    rate: float | None = None
    calls: frozenset[int] = frozenset()
    after: int | None = None
    times: int | None = None
    paths: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    match: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    seen: int = 0    # eligible requests so far
    fired: int = 0   # times this rule was chosen

    def get(self, key: str, default: Any) -> Any:
        return self.params.get(key, default)


def _calls(text: str) -> set[int]:
    out = set()
    for piece in re.split(r"[+|]", text):
        n = int(piece)
        if n < 1:
            raise ValueError("call numbers are 1-based")
        out.add(n)
    return out


def parse_spec(spec: str, kinds: Mapping[str, Mapping[str, Converter]],
               selectors: frozenset[str]) -> list[FaultRule]:
    """Parse ``spec`` for an emulator knowing ``kinds`` (kind -> its own params)."""
    by_lower = {k.lower(): k for k in kinds}
    rules: list[FaultRule] = []
    last_key: str | None = None
    for raw in (spec or "").split(","):
        part = raw.strip()
        if not part:
            continue
        try:
            if part.isdigit() and rules and last_key == "calls":
                rules[-1].calls = rules[-1].calls | _calls(part)
                continue
            if _PARAM_ITEM.match(part):
                if not rules:
                    raise ValueError("a parameter before any fault kind")
                last_key = _apply_param(rules[-1], part, kinds[rules[-1].kind], selectors)
                continue
            head, *params = _PARAM_SPLIT.split(part)
            name, _, rate_text = head.partition(":")
            kind = by_lower.get(name.strip().lower())
            if kind is None:
                raise ValueError(f"unknown fault kind {name!r}; known: {sorted(kinds)}")
            rule = FaultRule(kind)
            if rate_text:
                rate = float(rate_text)
                if not 0.0 <= rate <= 1.0:
                    raise ValueError(f"rate {rate_text!r} not in [0, 1]")
                rule.rate = rate
            rules.append(rule)
            last_key = None
            for item in params:
                last_key = _apply_param(rule, item, kinds[kind], selectors)
        except ValueError as exc:
            raise ValueError(f"bad fault spec part {part!r}: {exc}") from None
    return rules


def _apply_param(rule: FaultRule, item: str, own: Mapping[str, Converter],
                 selectors: frozenset[str]) -> str:
    key, eq, value = item.partition("=")
    key = key.strip()
    value = value.strip()
    if not eq or not value:
        raise ValueError(f"parameter {item!r} needs key=value")
    if key not in COMMON_PARAMS and key not in selectors and key not in own:
        allowed = sorted(COMMON_PARAMS | selectors | set(own))
        raise ValueError(f"unknown parameter {key!r} for {rule.kind}; allowed: {allowed}")
    if key == "calls":
        rule.calls = rule.calls | _calls(value)
    elif key == "after":
        rule.after = nonneg_int(value)
    elif key == "times":
        rule.times = int(value)
        if rule.times < 1:
            raise ValueError("times must be >= 1")
    elif key == "path":
        rule.paths = tuple(value.split("|"))
    elif key == "method":
        rule.methods = tuple(value.split("|"))
    elif key == "match":
        rule.match = tuple(value.split("|"))
    else:
        if key in rule.params:
            raise ValueError(f"parameter {key!r} given twice")
        rule.params[key] = own[key](value)
    return key


class FaultInjector:
    """Thread-safe, seeded rule engine; subclasses define kinds and what they do.

    ``set(spec)`` replaces the rules and resets the random stream and counters (so the
    same spec + seed + request sequence injects the same faults); ``clear()`` removes
    all rules; ``injected`` is a copy of the per-kind counter of faults actually put on
    the wire; ``requests_seen`` counts every request the injector looked at.
    """

    KINDS: Mapping[str, Mapping[str, Converter]] = {}
    SELECTORS: frozenset[str] = frozenset({"method"})
    EVENT_KINDS: frozenset[str] = frozenset()  # after=N fires once

    def __init__(self, spec: str | None = None, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self.seed = seed
        self.rules: list[FaultRule] = []
        self._rng = random.Random(seed)
        self._injected: collections.Counter[str] = collections.Counter()
        self.requests_seen = 0
        self.spec = ""
        if spec:
            self.set(spec)

    # ------------------------------------------------------------ public API
    @classmethod
    def parse(cls, spec: str) -> list[FaultRule]:
        return parse_spec(spec, cls.KINDS, cls.SELECTORS)

    def set(self, spec: str, seed: int | None = None) -> "FaultInjector":
        rules = self.parse(spec)
        with self._lock:
            if seed is not None:
                self.seed = seed
            self.rules = rules
            self.spec = spec
            self._rng = random.Random(self.seed)
            self._injected.clear()
            self.requests_seen = 0
        return self

    def clear(self) -> None:
        with self._lock:
            self.rules = []
            self.spec = ""

    @property
    def injected(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self._injected)

    # ------------------------------------------------------------ engine
    def _count(self, kind: str) -> None:
        with self._lock:
            self._injected[kind] += 1

    def _eligible(self, rule: FaultRule, ctx: Any) -> bool:  # pragma: no cover - overridden
        return True

    def _gate(self, rule: FaultRule) -> bool:
        n = rule.seen
        if rule.calls and n not in rule.calls:
            return False
        if rule.after is not None:
            if rule.kind in self.EVENT_KINDS:
                if n != rule.after + 1:
                    return False
            elif n <= rule.after:
                return False
        return True

    def decide(self, ctx: Any) -> tuple[FaultRule, random.Random] | None:
        """Count the request; return the first firing rule and an rng for its details.

        Every eligible rule counts the request and every eligible rate rule draws a
        number, whether or not an earlier rule fired, so the draws only depend on the
        request sequence.
        """
        with self._lock:
            self.requests_seen += 1
            chosen: FaultRule | None = None
            for rule in self.rules:
                if not self._eligible(rule, ctx):
                    continue
                rule.seen += 1
                fire = self._gate(rule)
                if rule.rate is not None:
                    fire = (self._rng.random() < rule.rate) and fire
                if rule.times is not None and rule.fired >= rule.times:
                    fire = False
                if fire and chosen is None:
                    chosen = rule
                    rule.fired += 1
            if chosen is None:
                return None
            return chosen, random.Random(self._rng.getrandbits(64))


def pattern_match(patterns: tuple[str, ...], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)
