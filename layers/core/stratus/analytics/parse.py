"""A question in English to a typed plan, with keyword maps and fuzzy matching against the profile.

The parser never guesses a column or a value: a word that matches two columns (or a value found in two
columns) is ambiguous, and a word where a measure or a filter should be that matches nothing is
unknown; both end in `Clarify`, which names what the dataset has. A question the data cannot answer
(why, a forecast, a period outside the data, a sum of a category) ends in `Unanswerable`, which says
what is missing.

The steps, on lower-cased tokens, each marking the tokens it consumed:
1. time windows (Q3, "third quarter", month names, years, "last 30 days");
2. numeric comparisons ("revenue over 100", "between 2 and 5");
3. category values (exact phrases, then close spellings of longer values);
4. column names (whole names, then one word of a name or a prefix, then close spellings);
5. keywords: the aggregate, "by"/"per"/"each" groups, "which X", superlatives and "top N".
"""

from __future__ import annotations

import calendar
import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from stratus.analytics.plan import Filter, Group, Plan, Window
from stratus.analytics.profile import ColumnProfile, DatasetProfile


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


class Clarify(Exception):
    pass


class Unanswerable(Exception):
    pass


TOKEN = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?%?|[a-z0-9][a-z0-9_']*|[<>]=?|=|\"|'")
STOP = _words(
    """a an the of for in on at to from with and or is are was were be been being do does did what
    whats which who whom when where how me my our us we you your i it its this that these those
    there their please show tell give list find get compute calculate display return see want know
    can could would should will has have had per by each every all any some across during between
    than as into out about also then now just only same instead so up down value values number
    amount data dataset table file row rows record records entry entries item items order orders
    transaction transactions reading readings measurement measurements response responses respondent
    respondents person people customer customers observation observations event events time period
    result results overall altogether figure figures there's what's sold made recorded got given say
    said give many much whole"""
)
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS["sept"] = 9
ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
WORD_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
}  # fmt: skip
UNIT_WORDS = {
    "day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month", "months": "month",
    "quarter": "quarter", "quarters": "quarter", "year": "year", "years": "year",
}  # fmt: skip
GRAIN_WORDS = {
    "hour": "hour", "hourly": "hour", "day": "day", "daily": "day", "date": "day", "week": "week",
    "weekly": "week", "month": "month", "monthly": "month", "quarter": "quarter", "quarterly": "quarter", "year": "year", "yearly": "year",
    "annual": "year", "annually": "year",
}  # fmt: skip
AGG_WORDS = {
    "total": "sum", "sum": "sum", "combined": "sum", "cumulative": "sum",
    "average": "avg", "avg": "avg", "mean": "avg", "typical": "avg",
    "median": "median", "count": "count",
}  # fmt: skip
SUPERLATIVES = {
    "highest": "desc", "largest": "desc", "biggest": "desc", "greatest": "desc", "most": "desc",
    "maximum": "desc", "max": "desc", "peak": "desc", "top": "desc", "best": "desc", "latest": "desc",
    "lowest": "asc", "smallest": "asc", "least": "asc", "fewest": "asc", "minimum": "asc", "min": "asc",
    "bottom": "asc", "worst": "asc", "earliest": "asc",
}  # fmt: skip
# Superlatives that imply their measure: (direction, a word of the column's name).
IMPLIED = {
    "youngest": ("asc", "age"), "oldest": ("desc", "age"), "coldest": ("asc", "temperature"),
    "hottest": ("desc", "temperature"), "warmest": ("desc", "temperature"), "cheapest": ("asc", "price"),
}  # fmt: skip
COMPARATORS = [  # longest first
    (("greater", "than", "or", "equal", "to"), ">="),
    (("less", "than", "or", "equal", "to"), "<="),
    (("more", "than"), ">"), (("greater", "than"), ">"), (("higher", "than"), ">"),
    (("larger", "than"), ">"), (("bigger", "than"), ">"), (("older", "than"), ">"),
    (("less", "than"), "<"), (("fewer", "than"), "<"), (("lower", "than"), "<"),
    (("smaller", "than"), "<"), (("younger", "than"), "<"),
    (("at", "least"), ">="), (("at", "most"), "<="), (("no", "more", "than"), "<="),
    (("equal", "to"), "="), (("exactly",), "="), (("equals",), "="),
    (("over",), ">"), (("above",), ">"), (("exceeding",), ">"), (("exceeds",), ">"), (("under",), "<"),
    (("below",), "<"), ((">",), ">"), ((">=",), ">="), (("<",), "<"), (("<=",), "<="), (("=",), "="),
]  # fmt: skip
COMPARATOR_WORDS = frozenset(w for words, _ in COMPARATORS for w in words)
NEGATIONS = {"excluding", "except", "not", "without", "other", "besides"}
GROUP_MARKERS = {"by", "per", "each", "every", "across"}
UNANSWERABLE = {
    "why": "why something happened",
    "predict": "a prediction",
    "forecast": "a forecast",
    "future": "the future",
    "will": "the future",
    "cause": "causes",
    "caused": "causes",
    "explain": "an explanation",
}


# Words that say nothing about what to compute: verbs and nouns of ordinary questions. Any other word
# that no column, value or keyword explains is asked back (it may be a filter we would otherwise drop).
HARMLESS = _words(
    """placed place sold sell sells selling bought buy buys made make makes earned earn earns generated
    generate spent spend paid pay received receive recorded record measured measure reported report
    logged log submitted submit answered answer gave give given took take taken got get happened happen
    occurred occur came went registered purchased collected captured observed produced delivered need
    like look looks users user clients client buyers buyer members member participants participant
    students student employees employee patients patient visits visit sessions session calls call
    tickets ticket cases case team teams group groups type types kind kinds category categories name
    names label labels class classes level levels approximately roughly usually typically actually
    really kindly whole entire full complete together both either respectively exact precise precisely
    currently ever exist exists existed old years aged there's here okay ok thanks thank hi hey hello"""
)
# Questions the plan language cannot express: asked back with what it can do instead.
RATIOS = _words("share percentage percent proportion ratio fraction rate")
CHANGES = _words("compare comparison difference change changed growth grow grew increase decrease")
# Periods relative to "now": the data's now is not the reader's, so these are asked back.
RELATIVE_TIME = _words("yesterday today tomorrow tonight current ago recently lately this")
FOLLOW_UP_STARTS = (("and",), ("what", "about"), ("how", "about"), ("same",), ("now",), ("only",), ("also",),
                    ("but",), ("then",), ("just",))  # fmt: skip
KEYWORDS = (
    set(AGG_WORDS)
    | set(SUPERLATIVES)
    | set(IMPLIED)
    | set(GRAIN_WORDS)
    | set(UNIT_WORDS)
    | set(MONTHS)
    | set(ORDINALS)
    | COMPARATOR_WORDS
    | NEGATIONS
    | set(UNANSWERABLE)
    | _words(
        """last past previous recent q1 q2 q3 q4 single individual distinct unique different sorted ordered
        ranked rank sort ascending descending vs versus against trend over time"""
    )
) - {"no"}  # "no" is a comparator word ("no more than") and a common answer
# Measures that do not add up: without an aggregate word their default is the average, not the total.
NON_ADDITIVE = _words(
    """temperature temp humidity rating score satisfaction nps age price rate ratio percent percentage
    pct battery level pressure speed latency duration margin grade weight height"""
)
CONTENT = re.compile(r"^[a-z][a-z_']{2,}$")  # a word that could name a column


def stem(word: str) -> str:
    word = word.removesuffix("'s").strip("'")
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t not in ('"', "'")]


def name_words(name: str) -> list[str]:
    """A column name as words: unit_price, unitPrice and "Unit Price" are all [unit, price]."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return [stem(t) for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


def number(token: str) -> float | None:
    t = token.replace(",", "").removesuffix("%")
    try:
        return float(t)
    except ValueError:
        return None


def _int_or_float(x: float) -> int | float:
    return int(x) if x == int(x) else x


@dataclass
class Mention:
    start: int
    end: int
    column: str
    value: str | None = None


@dataclass
class Parsed:
    """What one question said, each part None/empty when it said nothing about it."""

    aggregate: str | None = None
    superlative: str | None = None
    single: bool = False
    how_many: bool = False
    distinct: bool = False
    measures: list[str] = field(default_factory=list)
    count_column: str | None = None
    groups: list[Group] = field(default_factory=list)
    pick_group: bool = False  # "which region ...": one group, the best
    filters: list[Filter] = field(default_factory=list)
    cleared_filters: list[str] = field(default_factory=list)  # "for all regions"
    drop_groups: bool = False  # "overall"
    window: Window | None = None
    limit: int | None = None
    order: str | None = None
    versus: bool = False
    follow_up: bool = False
    implied: str | None = None  # "youngest": age

    def says_something(self) -> bool:
        return bool(
            self.aggregate or self.superlative or self.measures or self.groups or self.filters
            or self.window or self.how_many or self.cleared_filters or self.drop_groups
        )  # fmt: skip


class Parser:
    def __init__(self, profile: DatasetProfile) -> None:
        self.profile = profile
        self.columns = {c.name: c for c in profile.columns}
        self.times = [c for c in profile.columns if c.semantic == "time"]
        self.quantities = [c for c in profile.columns if c.semantic == "quantity"]
        self.words = {c.name: name_words(c.name) for c in profile.columns}

    # -- describing the dataset, for the questions asked back ---------------------------------------
    def describe(self) -> str:
        parts = []
        for c in self.profile.columns:
            if c.semantic == "category" and c.values:
                shown = ", ".join(c.values[:8]) + (", ..." if len(c.values) > 8 else "")
                parts.append(f"{c.name} (category: {shown})")
            else:
                parts.append(f"{c.name} ({c.semantic})")
        return "The columns are: " + "; ".join(parts) + "."

    def clarify(self, what: str) -> Clarify:
        return Clarify(f"{what} {self.describe()}")

    # -- the parse ------------------------------------------------------------------------------------
    def parse(self, question: str, follows: bool = False) -> Parsed:
        """The parts of `question`; `follows`: a previous plan exists (a part it lacks may come
        from there, so no measure is not yet a reason to ask back)."""
        self.follows = follows
        # ISO dates as words: 2024-03-30 -> march 30 2024
        question = re.sub(
            r"\b((?:19|20)\d\d)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\b",
            lambda m: f"{calendar.month_name[int(m[2])]} {int(m[3])} {m[1]}",
            question,
        )
        self.raw = question
        self.toks = tokens(question)
        self.stems = [stem(t) for t in self.toks]
        self.used = [False] * len(self.toks)
        out = Parsed()
        t = self.toks
        out.follow_up = any(tuple(t[: len(s)]) == s for s in FOLLOW_UP_STARTS) or "instead" in t
        self._time_window(out)
        values = self._values()
        columns = self._columns()
        values += self._close_values(values)
        self._comparisons(out, columns)
        self._keywords(out)
        self._assemble(out, values, columns)
        self._leftovers(out)
        return out

    def _mark(self, start: int, end: int) -> None:
        for i in range(start, end):
            self.used[i] = True

    def _free(self, start: int, end: int) -> bool:
        return end <= len(self.toks) and not any(self.used[start:end])

    def _time_column(self, explicit: str | None = None) -> ColumnProfile:
        if explicit:
            return self.columns[explicit]
        if not self.times:
            raise Unanswerable(
                "The dataset has no date or time column, so it cannot be filtered or grouped by a period. "
                + self.describe()
            )
        named = [c for c in self.times if all(w in self.stems for w in self.words[c.name])]
        if len(named) == 1:
            return named[0]
        if len(self.times) > 1:
            raise self.clarify(
                "Which date column should I use: " + " or ".join(c.name for c in self.times) + "?"
            )
        return self.times[0]

    def _time_window(self, out: Parsed) -> None:
        t = self.toks
        w: dict[str, object] = {}
        seen: dict[str, list[object]] = {}
        for i, tok in enumerate(t):
            if self.used[i]:
                continue
            nxt = t[i + 1] if i + 1 < len(t) else ""
            prev = t[i - 1] if i > 0 else ""
            if re.fullmatch(r"q[1-4]", tok):
                w["quarter"] = int(tok[1])
                seen.setdefault("quarter", []).append(w["quarter"])
                self._mark(i, i + 1)
            elif tok in ORDINALS and nxt == "quarter":
                w["quarter"] = ORDINALS[tok]
                seen.setdefault("quarter", []).append(w["quarter"])
                self._mark(i, i + 2)
            elif tok == "quarter" and nxt in {"1", "2", "3", "4"}:
                w["quarter"] = int(nxt)
                seen.setdefault("quarter", []).append(w["quarter"])
                self._mark(i, i + 2)
            elif tok in {"last", "past", "previous", "recent"} and i + 1 < len(t):
                n_tok, unit_at = nxt, i + 2
                n = WORD_NUMBERS.get(n_tok) if n_tok in WORD_NUMBERS else number(n_tok)
                if n is None:  # "last month"
                    n, unit_at = 1, i + 1
                unit = UNIT_WORDS.get(t[unit_at]) if unit_at < len(t) else None
                if unit and n == int(n) and n > 0:
                    w["last"] = {"n": int(n), "unit": unit}
                    seen.setdefault("last", []).append(w["last"])
                    self._mark(i, unit_at + 1)
            elif tok in MONTHS and (
                tok != "may" or prev in {"in", "for", "during", "of", "on"} or _year(nxt)
            ):
                w["month"] = MONTHS[tok]
                seen.setdefault("month", []).append(w["month"])
                self._mark(i, i + 1)
                day = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", nxt)
                if day and 1 <= int(day[1]) <= 31:  # "March 30"
                    w["day"] = int(day[1])
                    seen.setdefault("day", []).append(w["day"])
                    self._mark(i + 1, i + 2)
                day = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", prev)
                if day and 1 <= int(day[1]) <= 31 and not self.used[i - 1]:  # "30 March"
                    w["day"] = int(day[1])
                    seen.setdefault("day", []).append(w["day"])
                    self._mark(i - 1, i)
            elif (
                _year(tok)
                and prev not in COMPARATOR_WORDS | {"between"}
                and not (i >= 3 and t[i - 3] == "between" and prev in {"and", "to"})  # between 2000 and 2030
            ):
                w["year"] = int(tok)
                seen.setdefault("year", []).append(w["year"])
                self._mark(i, i + 1)
        for part, found in seen.items():
            distinct = list(dict.fromkeys(json.dumps(v, sort_keys=True) for v in found))
            if len(distinct) > 1:
                shown = " and ".join(_period_name(part, json.loads(d)) for d in distinct)
                grain = "day" if part == "last" else part
                example = f"total {self.quantities[0].name}" if self.quantities else "rows"
                raise self.clarify(
                    f"The question names more than one {part} ({shown}); I compute one period at a time. "
                    f"Ask for each, or group by it (for example '{example} by {grain}')."
                )
        if w:
            column = self._time_column()
            out.window = Window(
                column.name,
                year=w.get("year"),  # type: ignore[arg-type]
                quarter=w.get("quarter"),  # type: ignore[arg-type]
                month=w.get("month"),  # type: ignore[arg-type]
                last=w.get("last"),  # type: ignore[arg-type]
                day=w.get("day"),  # type: ignore[arg-type]
            )

    def _values(self) -> list[Mention]:
        """Category values named in the question; the longest phrases first."""
        found: list[Mention] = []
        quoted = {q.lower() for q in re.findall(r"[\"']([^\"']+)[\"']", self.raw)}
        candidates = []
        for c in self.profile.columns:
            if c.semantic != "category" or not c.values:
                continue
            for v in c.values:
                vt = [stem(x) for x in tokens(v)]
                if vt:
                    candidates.append((len(vt), c.name, v, vt))
        candidates.sort(key=lambda x: -x[0])
        for n, column, value, vt in candidates:
            weak = n == 1 and (
                vt[0] in STOP or vt[0] in KEYWORDS or len(vt[0]) < 2 or number(vt[0]) is not None
            )
            for i in range(len(self.toks) - n + 1):
                if self.stems[i : i + n] != vt or any(self.used[i : i + n]):
                    continue
                if weak and value.lower() not in quoted and not self._named_before(i, column):
                    continue
                found.append(Mention(i, i + n, column, value))
        # one span, two columns: ambiguous unless the column is named next to it
        by_span: dict[tuple[int, int], list[Mention]] = {}
        for m in found:
            by_span.setdefault((m.start, m.end), []).append(m)
        result: list[Mention] = []
        for (s, e), ms in sorted(by_span.items()):
            if any(r.start <= s < r.end for r in result):
                continue
            if len({m.column for m in ms}) > 1:
                named = [m for m in ms if self._named_before(s, m.column) or self._named_after(e, m.column)]
                if len(named) != 1:
                    raise self.clarify(
                        f"'{ms[0].value}' is a value of "
                        + " and ".join(sorted({m.column for m in ms}))
                        + ": which column do you mean?"
                    )
                ms = named
            result.append(ms[0])
            self._mark(s, e)
        return result

    def _close_values(self, exact: list[Mention]) -> list[Mention]:
        """Misspelt values ("Suoth"): one edit away (two for long values) from a value of five or more
        letters, on words no column, value or keyword explains; a spelling close to values of two
        columns is asked back."""
        found: list[Mention] = []
        for c in self.profile.columns:
            if c.semantic != "category" or not c.values:
                continue
            for v in c.values:
                vt = [stem(x) for x in tokens(v)]
                joined, n = " ".join(vt), len(vt)
                if len(joined) < 5 or n == 0:
                    continue
                for i in range(len(self.toks) - n + 1):
                    span = self.stems[i : i + n]
                    if not self._free(i, i + n) or any(x in KEYWORDS or x in STOP for x in span):
                        continue
                    if edit_distance(" ".join(span), joined) <= (1 if len(joined) < 9 else 2):
                        found.append(Mention(i, i + n, c.name, v))
        spans: dict[tuple[int, int], list[Mention]] = {}
        for m in found:
            spans.setdefault((m.start, m.end), []).append(m)
        out = []
        for (s, e), ms in sorted(spans.items()):
            if len({m.value for m in ms}) > 1:
                raise self.clarify(
                    f"'{' '.join(self.toks[s:e])}' could be " + " or ".join(sorted({str(m.value) for m in ms}))
                    + ": which do you mean?"
                )  # fmt: skip
            if self._free(s, e):
                out.append(ms[0])
                self._mark(s, e)
        return out

    def _named_before(self, i: int, column: str) -> bool:
        """The column's name (or its last word) within two words before position i."""
        words = self.words[column]
        n = len(words)
        if i >= n and self.stems[i - n : i] == words:
            return True
        return words[-1] in self.stems[max(0, i - 2) : i]

    def _named_after(self, e: int, column: str) -> bool:
        """The column's name (or its first word) within two words after position e."""
        words = self.words[column]
        return self.stems[e : e + len(words)] == words or words[0] in self.stems[e : e + 2]

    def _columns(self) -> list[Mention]:
        """Column names: whole names first, then one word of a name (or a prefix), then spellings."""
        found: list[Mention] = []
        names = sorted(self.words.items(), key=lambda kv: -len(kv[1]))
        for column, words in names:
            n = len(words)
            for i in range(len(self.toks) - n + 1):
                if self.stems[i : i + n] == words and self._free(i, i + n):
                    found.append(Mention(i, i + n, column))
                    self._mark(i, i + n)
        for i, s in enumerate(self.stems):
            if self.used[i] or not CONTENT.match(s) or s in STOP or s in KEYWORDS:
                continue
            partial = [c for c, words in names if s in words and len(s) >= 3]
            if not partial and len(s) >= 4:
                partial = [c for c, words in names if any(w.startswith(s) for w in words)]
            if not partial and len(s) >= 4:
                partial = [
                    c
                    for c, words in names
                    if difflib.SequenceMatcher(None, s, "".join(words)).ratio() >= 0.85
                    or any(len(w) >= 4 and difflib.SequenceMatcher(None, s, w).ratio() >= 0.85 for w in words)
                ]
            if len(partial) > 1:
                raise self.clarify(
                    f"'{self.toks[i]}' could be "
                    + " or ".join(sorted(partial))
                    + ": which column do you mean?"
                )
            if partial:
                found.append(Mention(i, i + 1, partial[0]))
                self._mark(i, i + 1)
        found.sort(key=lambda m: m.start)
        return found

    def _comparisons(self, out: Parsed, columns: list[Mention]) -> None:
        """Numeric filters: "revenue over 100", "units between 2 and 5", "rating of 5"."""
        t = self.toks
        i = 0
        while i < len(t):
            op, width = None, 0
            if t[i] == "between" and i + 3 < len(t) and t[i + 2] in {"and", "to"}:
                lo, hi = number(t[i + 1]), number(t[i + 3])
                if lo is not None and hi is not None:
                    tail = t[i + 4 : i + 6]
                    hint = "age" if "old" in tail or "years" in tail else None
                    self._numeric_filter(out, columns, i, i + 4, "between", [lo, hi], hint)
                    i += 4
                    continue
            for words, o in COMPARATORS:
                if tuple(t[i : i + len(words)]) == words:
                    op, width = o, len(words)
                    break
            if op and i + width < len(t) and number(t[i + width]) is not None and not self.used[i + width]:
                value = number(t[i + width])
                assert value is not None
                tail = t[i + width + 1 : i + width + 3]
                hint = "age" if t[i] in {"older", "younger"} or "old" in tail or "years" in tail else None
                self._numeric_filter(out, columns, i, i + width + 1, op, [value], hint)
                i += width + 1
                continue
            i += 1
        # "rating of 5", "rating = 5", "rating is 5"
        for m in columns:
            if self.columns[m.column].semantic != "quantity":
                continue
            j = m.end
            value = number(t[j + 1]) if j + 1 < len(t) and t[j] in {"of", "is", "was", "="} else None
            if (
                value is not None
                and not self.used[j + 1]
                and (j + 2 >= len(t) or not self._names_quantity(j + 2))
            ):
                out.filters.append(Filter(m.column, "=", [_int_or_float(value)]))
                self._mark(j, j + 2)
                m.value = "filter"

    def _names_quantity(self, i: int) -> bool:
        return any(stem(self.toks[i]) in self.words[c.name] for c in self.quantities)

    def _numeric_filter(
        self, out: Parsed, columns: list[Mention], start: int, end: int, op: str, values: list[float],
        hint: str | None = None,
    ) -> None:  # fmt: skip
        skip = {"is", "was", "are", "were", "be", "been", "of", "with", "had", "has", "have", "a", "an", "the",
                "that", "where", "which", "whose", "when", "value", "values", "level", "levels"}  # fmt: skip
        free = [m for m in columns if m.value is None and self.columns[m.column].semantic == "quantity"]
        # "at least 5 units": the column right after the number wins over one before the comparison
        after = [m for m in free if m.start == end]
        column = after[0] if after else None
        if column is None:
            before = [m for m in free if m.end <= start]
            if before and all(w in skip for w in self.toks[before[-1].end : start]):
                column = before[-1]
        name = column.column if column else None
        if name is None and hint:
            named = [c.name for c in self.quantities if hint in self.words[c.name]]
            name = named[0] if len(named) == 1 else None
        if name is None:
            shown = " ".join(self.toks[start:end])
            raise self.clarify(
                f"Which column should be {shown}? The numeric columns are "
                + ", ".join(c.name for c in self.quantities)
                + "."
            )
        if column is not None:
            column.value = "filter"  # consumed: not a measure
        out.filters.append(Filter(name, op, [_int_or_float(v) for v in values]))
        self._mark(start, end)

    def _keywords(self, out: Parsed) -> None:
        t = self.toks
        for i, tok in enumerate(t):
            if self.used[i]:
                continue
            nxt = t[i + 1] if i + 1 < len(t) else ""
            prev = t[i - 1] if i > 0 else ""
            if tok == "how" and nxt == "many":
                out.how_many = True
                self._mark(i, i + 2)
            elif tok == "number" and nxt == "of":
                out.aggregate = (
                    "count" if out.aggregate in (None, "sum") else out.aggregate
                )  # "total number of"
                self._mark(i, i + 2)
            elif tok in AGG_WORDS:
                if {out.aggregate, AGG_WORDS[tok]} == {"sum", "count"}:
                    out.aggregate = "count"  # "the total count of orders": a count
                    self._mark(i, i + 1)
                    continue
                if out.aggregate not in (None, AGG_WORDS[tok]):
                    raise self.clarify(
                        f"The question asks for both the {_AGG_LABEL[out.aggregate]} and the "
                        f"{_AGG_LABEL[AGG_WORDS[tok]]}; I compute one at a time."
                    )
                out.aggregate = AGG_WORDS[tok]
                self._mark(i, i + 1)
            elif tok in {"distinct", "unique", "different"}:
                out.distinct = True
                self._mark(i, i + 1)
            elif tok in {"single", "individual"}:
                out.single = True
                self._mark(i, i + 1)
            elif tok in SUPERLATIVES and not (tok == "least" and prev == "at"):
                if tok in {"top", "bottom"} and number(nxt) is not None:
                    out.limit = int(number(nxt) or 1)
                    self._mark(i + 1, i + 2)
                elif tok in {"top", "bottom"} and nxt in WORD_NUMBERS and nxt not in {"a", "an"}:
                    out.limit = WORD_NUMBERS[nxt]
                    self._mark(i + 1, i + 2)
                if out.superlative not in (None, SUPERLATIVES[tok]):
                    raise self.clarify(
                        "The question asks for both the highest and the lowest; I find one at a time."
                    )
                out.superlative = SUPERLATIVES[tok]
                self._mark(i, i + 1)
            elif tok in IMPLIED:
                out.superlative, hint = IMPLIED[tok]
                named = [
                    c.name for c in self.quantities if any(w.startswith(hint) for w in self.words[c.name])
                ]
                if len(named) == 1:
                    out.implied = named[0]
                self._mark(i, i + 1)
            elif tok in {"ascending", "descending"}:
                out.order = "asc" if tok == "ascending" else "desc"
                self._mark(i, i + 1)
            elif tok in {"sorted", "ordered", "ranked", "rank", "sort"}:
                out.order = out.order or "desc"
                self._mark(i, i + 1)
            elif tok in {"vs", "versus", "against"}:
                out.versus = True
                self._mark(i, i + 1)
            elif tok in {"overall"} or (tok == "in" and nxt == "total" and i + 2 == len(t)):
                out.drop_groups = True
                self._mark(i, i + 1)

    def _assemble(self, out: Parsed, values: list[Mention], columns: list[Mention]) -> None:
        t = self.toks
        # values -> filters (several values of one column: IN, and grouped by it)
        per_column: dict[str, list[Mention]] = {}
        for m in values:
            per_column.setdefault(m.column, []).append(m)
        for column, ms in per_column.items():
            negated = any(w in NEGATIONS for w in t[max(0, ms[0].start - 2) : ms[0].start])
            vals = list(dict.fromkeys(m.value for m in ms if m.value is not None))
            if len(vals) == 1:
                out.filters.append(Filter(column, "!=" if negated else "=", vals))
            else:
                out.filters.append(Filter(column, "not in" if negated else "in", vals))
                if not negated and (
                    out.versus or not any(w in t for w in ("total", "combined", "together", "altogether"))
                ):
                    out.groups.append(Group(column))
        # groups: "by X", "per month", "monthly", "which X", "top 3 X"
        for i, tok in enumerate(t):
            if (
                tok in GRAIN_WORDS
                and not self.used[i]
                and tok not in {"date", "hour", "day", "week", "month", "quarter", "year"}
            ):
                out.groups.append(Group(self._time_column().name, GRAIN_WORDS[tok]))
                self._mark(i, i + 1)
            elif tok == "over" and i + 1 < len(t) and t[i + 1] == "time" and not self.used[i]:
                out.groups.append(Group(self._time_column().name, "month"))
                self._mark(i, i + 2)
            elif tok == "trend" and not self.used[i]:
                out.groups.append(Group(self._time_column().name, "month"))
                self._mark(i, i + 1)
        for i, tok in enumerate(t):
            if (
                tok not in GROUP_MARKERS
                and tok not in {"which", "what"}
                and not (
                    tok in {"top", "bottom"}
                    or (i > 0 and t[i - 1] in {"top", "bottom"} and number(tok) is not None)
                )
            ):
                continue
            j = i + 1
            while j < len(t) and t[j] in {"the", "a", "of", "for"}:
                j += 1
            if j >= len(t):
                continue
            if (
                (tok in GROUP_MARKERS or tok in {"which", "what"})
                and t[j] in GRAIN_WORDS
                and not self.used[j]
            ):
                out.groups.append(Group(self._time_column().name, GRAIN_WORDS[t[j]]))
                out.pick_group = out.pick_group or tok in {"which", "what"}
                self._mark(i, j + 1)
                continue
            hit = next((c for c in columns if c.start == j and c.value is None), None)
            if hit is None:
                continue
            m = hit
            sem = self.columns[m.column].semantic
            if sem == "quantity":
                if tok == "by" and (out.superlative or out.order or out.limit):
                    out.order = out.order or out.superlative or "desc"  # "top 3 products by revenue"
                continue
            if tok in {"which", "what"}:
                if sem == "time":
                    continue
                out.pick_group = True
            grain = None
            if sem == "time":  # "by shipped month"
                after = t[m.end] if m.end < len(t) else ""
                grain = GRAIN_WORDS.get(after, "day")
                if after in GRAIN_WORDS:
                    self._mark(m.end, m.end + 1)
            group = Group(m.column, grain)
            out.groups.append(group)
            m.value = "group"
            self._mark(i, m.end)
            # "by region and product"
            k = m.end
            if k + 1 < len(t) and t[k] in {"and", ","}:
                m2 = next((x for x in columns if x.start == k + 1 and x.value is None), None)
                if m2 is not None and self.columns[m2.column].semantic in {"category", "id"}:
                    out.groups.append(Group(m2.column))
                    m2.value = "group"
                    self._mark(k, m2.end)
        # "for all regions": clear that column's filter
        for m in columns:
            if (
                m.value is None
                and m.start > 0
                and t[m.start - 1] in {"all", "every", "any"}
                and self.columns[m.column].semantic == "category"
            ):
                out.cleared_filters.append(m.column)
                m.value = "cleared"
        # "the Store channel", "sensor S1": the column names its value
        for m in columns:
            if m.value is None and any(
                v.column == m.column and (0 <= m.start - v.end <= 2 or 0 <= v.start - m.end <= 2)
                for v in values
            ):
                m.value = "named"
        # the rest: measures, or the column a count or a "how many different" is about
        quantities_named = any(
            m.value is None and self.columns[m.column].semantic == "quantity" for m in columns
        )
        for m in columns:
            if m.value is not None:
                continue
            c = self.columns[m.column]
            if c.semantic == "quantity":
                out.measures.append(m.column)
            elif out.how_many or out.distinct or out.aggregate == "count":
                if c.semantic in {"category", "id", "text"}:
                    out.count_column = m.column
            elif out.window is not None and m.column == out.window.column:
                pass  # "where shipped is in February": the window's column
            elif c.semantic == "time" and (out.superlative or out.aggregate in {"min", "max"}):
                out.measures.append(m.column)  # "the earliest date"
            elif (
                c.semantic in {"category", "text", "id"}
                and out.aggregate in {"sum", "avg", "median"}
                and (not quantities_named)
            ):
                raise Unanswerable(
                    f"{m.column} is a {c.semantic} column, so it has no {_AGG_NAME[out.aggregate]}; "
                    f"I can count it or group by it. " + self.describe()
                )
            elif c.semantic == "category":
                # named, but neither grouped by nor given a value: do not drop it silently
                shown = ", ".join((c.values or [])[:8])
                raise self.clarify(
                    f"What should I do with {m.column}: group by it ('by {m.column}') or keep one of its "
                    f"values ({shown})?"
                )
            m.value = "used"
        if out.implied and not out.measures:
            out.measures = [out.implied]
        out.measures = list(dict.fromkeys(out.measures))
        if not out.measures and self.times and any(w in t for w in ("earliest", "latest")):
            out.measures = [self._time_column().name]  # "when was the earliest reading?"

    def _leftovers(self, out: Parsed) -> None:
        """Words nothing explained: a reason to refuse (why, forecasts) or to ask back."""
        t = self.toks
        free = [i for i, u in enumerate(self.used) if not u]
        for i in free:
            if t[i] in UNANSWERABLE:
                if t[i] == "will" and i > 0 and t[i - 1] not in {"what", "how", "when"}:
                    continue
                raise Unanswerable(
                    f"This dataset can only answer with numbers computed from its rows; it cannot give "
                    f"{UNANSWERABLE[t[i]]}. " + self.describe()
                )
        if any(t[i] == "next" and i + 1 < len(t) and t[i + 1] in UNIT_WORDS for i in free):
            raise Unanswerable(
                "The dataset only has past rows; it cannot say what happens next. " + self.describe()
            )
        relative = [
            " ".join(t[i : i + 2]) if t[i] == "this" else t[i]
            for i in free
            if t[i] in RELATIVE_TIME
            and not (t[i] == "this" and (i + 1 >= len(t) or t[i + 1] not in UNIT_WORDS))
        ]
        if relative:
            col = self.times[0] if self.times else None
            span = f" The data runs from {col.min} to {col.max}." if col else ""
            raise self.clarify(
                f"Which period is '{relative[0]}'? Name one, such as 'the last 7 days', 'March 2024' or 'Q3'.{span}"
            )
        unknown = [
            i
            for i in free
            if re.match(r"^[a-z][a-z0-9_']+$|^\d+[a-z]+$", t[i])
            and not re.fullmatch(r"\d+(st|nd|rd|th)", t[i])
            and stem(t[i]) not in STOP
            and t[i] not in STOP
            and t[i] not in KEYWORDS
            and t[i] not in HARMLESS
            and stem(t[i]) not in HARMLESS
        ]
        if ratio := [t[i] for i in unknown if t[i] in RATIOS]:
            raise self.clarify(
                f"I do not compute a {ratio[0]} directly; ask for the counts or totals it is made of "
                "(for example 'how many orders by channel')."
            )
        if [t[i] for i in unknown if t[i] in CHANGES]:
            raise self.clarify(
                "I do not compute changes or differences directly; ask for each period or group "
                "(for example 'total revenue by year') and compare those."
            )
        capitalised = set(re.findall(r"(?<!^)(?<![.?!] )\b([A-Z][a-zA-Z0-9]*)", self.raw.strip()))
        codes = {i for i in unknown if re.search(r"\d", t[i])}  # "S9": a value we do not have
        stray = [t[i] for i in free if number(t[i]) is not None]
        if stray:
            raise self.clarify(f"I could not tell what '{stray[0]}' refers to.")
        suspicious = [
            i for i in unknown
            if i in codes or self._original(i) in capitalised
            or (i > 0 and t[i - 1] in {"for", "in", "from", "with", "where", "on", "at"})
        ]  # fmt: skip
        needs_measure = (out.aggregate in {"sum", "avg", "median"} or out.superlative) and not out.measures
        needs_measure = needs_measure and not self.follows
        if needs_measure and out.count_column is None and not out.how_many:
            if out.superlative and out.groups and not out.aggregate:
                return  # "which region has the most rows": a count
            if unknown:
                word = " ".join(t[i] for i in unknown[:2])
                raise self.clarify(f"I could not find a column called '{word}'.")
            if len(self.quantities) != 1:
                raise self.clarify("Which column should I compute that on?")
        counting = out.how_many or out.aggregate == "count" or out.count_column or out.superlative
        if unknown and not out.measures and not counting and not self.follows:
            # "sales by region" where no column is called sales: not a count of rows
            raise self.clarify(f"I could not find a column called '{' '.join(t[i] for i in unknown[:2])}'.")
        if suspicious:
            word = self.toks[suspicious[0]]
            raise self.clarify(f"I could not find '{word}' in any column or value.")
        if unknown:
            words = "', '".join(t[i] for i in unknown[:3])
            raise self.clarify(f"I could not match '{words}' to a column or a value.")
        if not out.says_something():
            raise self.clarify("What should I compute?")

    def _original(self, i: int) -> str:
        for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9_']*", self.raw):
            if word.lower() == self.toks[i]:
                return str(word)
        return self.toks[i]


_AGG_LABEL = {"sum": "total", "avg": "average", "median": "median", "count": "count"}
_AGG_NAME = {"sum": "total", "avg": "average", "median": "median"}


def _default_aggregate(plan: Plan) -> str:
    """Without an aggregate word: the total, or the average for a measure that does not add up."""
    words = {w for m in plan.measures for w in name_words(m)}
    return "avg" if words & NON_ADDITIVE else "sum"


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance with adjacent transpositions counted as one edit."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _period_name(part: str, value: Any) -> str:
    if part == "quarter":
        return f"Q{value}"
    if part == "month":
        return calendar.month_name[int(value)]
    if part == "last":
        return f"the last {value['n']} {value['unit']}s"
    return str(value)


def _year(tok: str) -> bool:
    return bool(re.fullmatch(r"(19|20)\d\d", tok))


def build_plan(parsed: Parsed, parser: Parser, previous: Plan | None) -> Plan:
    """The plan: the question's parts, over the previous plan's when the question is a follow-up."""
    follow = previous is not None and (
        parsed.follow_up or not (parsed.measures or parsed.aggregate or parsed.how_many)
    )
    plan = Plan() if not follow or previous is None else Plan.from_dict(previous.to_dict())
    quantities = parser.quantities
    if parsed.drop_groups:
        plan.group_by, plan.order, plan.limit = [], None, None
    if parsed.groups:
        plan.group_by = parsed.groups
        if follow:
            plan.order, plan.limit = None, None
    if len(parsed.measures) > 2:
        raise parser.clarify(
            "The question names " + ", ".join(parsed.measures) + "; I compute at most two measures at a time."
        )
    if parsed.measures:
        plan.measures = parsed.measures
    for f in parsed.filters:
        plan.filters = [g for g in plan.filters if g.column != f.column or f.op in {">", "<", ">=", "<="}]
        plan.filters.append(f)
    plan.filters = [f for f in plan.filters if f.column not in parsed.cleared_filters]
    if parsed.window:
        if follow and plan.window and plan.window.column == parsed.window.column:
            w, n = plan.window, parsed.window
            if n.last:
                w.year, w.quarter, w.month, w.last = None, None, None, n.last
            else:
                w.last = None
                if n.year is not None:
                    w.year = n.year
                if n.quarter is not None:
                    w.quarter, w.month, w.day = n.quarter, None, None
                if n.month is not None:
                    w.month, w.quarter, w.day = n.month, None, n.day
        else:
            plan.window = parsed.window
    # the aggregate
    agg = parsed.aggregate
    if parsed.count_column and not parsed.measures:
        agg, plan.measures = "count_distinct", [parsed.count_column]
    elif parsed.how_many and parsed.measures:
        agg = agg or "sum"  # "how many units were sold": units add up
    elif parsed.how_many or agg == "count":
        agg, plan.measures = "count", []
    if parsed.versus and len(plan.measures) == 2 and agg is None and not plan.group_by:
        agg = "none"
    ranks = bool(plan.group_by) and (parsed.pick_group or parsed.limit is not None or not plan.measures)
    if agg is None and parsed.superlative:
        on_time = plan.measures and parser.columns[plan.measures[0]].semantic == "time"
        if ranks and not parsed.single and not on_time:
            if follow and previous is not None and not parsed.measures and plan.aggregate != "none":
                agg = plan.aggregate  # "top 2" after "median nps by country": still the median
            else:
                agg = _default_aggregate(plan) if plan.measures else "count"
        else:
            agg = "max" if parsed.superlative == "desc" else "min"
    if agg is None and parsed.single and parsed.superlative:
        agg = "max" if parsed.superlative == "desc" else "min"
    if agg is None and follow and previous is not None:
        agg = plan.aggregate if not (plan.aggregate == "count" and plan.measures) else "sum"
        if agg in {"count", "count_distinct"} and parsed.measures and not parsed.how_many:
            agg = "sum"
    if agg is None:
        agg = _default_aggregate(plan) if plan.measures else "count"
    plan.aggregate = agg
    if agg in {"sum", "avg", "median", "min", "max"} and not plan.measures:
        if len(quantities) == 1:
            plan.measures = [quantities[0].name]
        else:
            raise parser.clarify("Which column should I compute that on?")
    if agg == "count":
        plan.measures = []
    # order and limit: only a grouped result is ranked
    if plan.group_by:
        if parsed.superlative and ranks:
            plan.order, plan.limit = parsed.superlative, parsed.limit or 1
        if parsed.order:
            plan.order = parsed.order
        if parsed.limit:
            plan.limit = parsed.limit
    else:
        plan.order, plan.limit = None, None
    if agg in {"sum", "avg", "median"}:
        for m in plan.measures:
            c = parser.columns[m]
            if c.semantic != "quantity":
                raise Unanswerable(
                    f"{m} is a {c.semantic} column, so it has no {_AGG_NAME[agg]}. " + parser.describe()
                )
    return plan
