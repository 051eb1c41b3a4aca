"""Query values that remember their items, so an item holding the delimiter stays one item.

OpenAPI writes an unexploded query array as one value, its items joined by a delimiter (`ids=1,2`), and an
unexploded object as `key,value,...`. The delimiter travels as it is and each item escaped
(`names=Smith%2C%20J,Doe`), so the raw query tells an item's comma from a delimiter where the unescaped
text cannot. A `QueryText` is the unescaped text (a `str`, so everything else reads it as before) that
also knows its items: the ones it was joined from (a tool call's request), or its raw spelling (a request
read from a URL). Many clients escape the delimiter too (`ids=1%2C2`); a raw value with no bare delimiter
is then split on the unescaped one, as before.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote_plus

# The separator of an unexploded array, by style (commas for the others). Swagger 2.0's `collectionFormat`
# gives path and header arrays these too.
ARRAY_DELIMITERS = {"spaceDelimited": " ", "pipeDelimited": "|", "tabDelimited": "\t"}

# Delimiters that can travel bare. Space- and tab-delimited items are escaped like the delimiter itself,
# so those stay ambiguous whichever way they are read.
_BARE_DELIMITERS = (",", "|")


class QueryText(str):
    """A query value's unescaped text that knows how it splits into items."""

    _items: tuple[str, ...] | None = None
    _delimiter: str | None = None
    _raw: str | None = None

    @classmethod
    def joined(cls, items: list[str], delimiter: str = ",") -> QueryText:
        text = cls(delimiter.join(items))
        text._items, text._delimiter = tuple(items), delimiter
        return text

    @classmethod
    def from_raw(cls, raw: str) -> QueryText:
        text = cls(unquote_plus(raw))
        text._raw = raw
        return text

    def items(self, delimiter: str = ",") -> list[str]:
        """The items this value holds when split on `delimiter`; none for an empty text."""
        if not self:
            return []
        if self._items is not None and self._delimiter == delimiter:
            return list(self._items)
        if self._raw is not None and delimiter in _BARE_DELIMITERS and delimiter in self._raw:
            return [unquote_plus(part) for part in self._raw.split(delimiter)]
        return str(self).split(delimiter)


def split_items(text: str, delimiter: str = ",") -> list[str]:
    """The items of an unexploded value: a `QueryText` knows them; a plain text is split on `delimiter`."""
    if isinstance(text, QueryText):
        return text.items(delimiter)
    return text.split(delimiter) if text else []


def parse_query(query: str) -> dict[str, list[QueryText]]:
    """A URL's query string → key → its values in order, as `parse_qs(keep_blank_values=True)` reads it,
    each value keeping its raw spelling for `QueryText.items`."""
    values: dict[str, list[QueryText]] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, raw = pair.partition("=")
        values.setdefault(unquote_plus(key), []).append(QueryText.from_raw(raw))
    return values


def encode_query(query: dict[str, Any]) -> str:
    """`urlencode(query, doseq=True, quote_via=quote)`, except that a value joined from items keeps its
    delimiter bare and escapes each item, as OpenAPI writes `form` and `pipeDelimited` arrays."""
    pairs = []
    for key, value in query.items():
        for one in value if isinstance(value, list) else [value]:
            pairs.append(f"{quote(str(key), safe='')}={_encoded_value(one)}")
    return "&".join(pairs)


def _encoded_value(value: Any) -> str:
    if isinstance(value, QueryText) and value._items is not None and value._delimiter in _BARE_DELIMITERS:
        return value._delimiter.join(quote(item, safe="") for item in value._items)
    return quote(str(value), safe="")
