"""Answers encoded ahead of time, for loads of many rows.

A load that sends thousands of rows spends most of its time building answer dicts and walking them
again to encode them. A load may instead yield `EncodedPair`s: the action and the meta's own members
as JSON text, written straight from the row's values. The engine wraps each into an `action` answer
(command id, the subscribing node) as text, and the view writes the text as it is.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii

from .protocol import dumps

# A string as a JSON string literal (non-ASCII escaped, as `dumps` does).
quote = encode_basestring_ascii


class Encoded(str):
    """One answer as JSON text (an object), or several joined by commas, written to the stream as it is."""

    __slots__ = ()


class EncodedPair:
    """`(action, meta)` of a load as JSON text: `action` is the action object, `meta` the meta's members
    (`"id":"…","time":1,`, each followed by a comma) or "": the engine adds `nodes`."""

    __slots__ = ("action", "meta")

    def __init__(self, action: str, meta: str = ""):
        self.action = action
        self.meta = meta


class EncodedPairs(list[tuple[str, str]]):
    """Many pairs of a load (a chunk of listed rows), each as `EncodedPair`'s two texts in a tuple (it
    costs less to build): the engine writes them as one piece."""

    __slots__ = ()


class AnswerWriter:
    """Turns a command's `EncodedPair`s into `action` answers addressed to the subscribing node."""

    __slots__ = ("end", "middle")

    def __init__(self, command_id: str, node_id: str):
        # Keys in sorted order, as `dumps` writes them: action, answer, id, meta (…, nodes).
        self.middle = f',"answer":"action","id":{quote(command_id)},"meta":{{'
        self.end = f'"nodes":{dumps([node_id])}}}}}'

    def __call__(self, pair: EncodedPair) -> Encoded:
        return Encoded('{"action":' + pair.action + self.middle + pair.meta + self.end)

    def many(self, pairs: EncodedPairs) -> Encoded:
        middle, end = self.middle, self.end
        return Encoded(",".join(['{"action":' + action + middle + meta + end for action, meta in pairs]))


def answer_text(kind: str, id: str) -> Encoded:
    """`answer(kind, id)` as `dumps` writes it: approved, forbidden, processed, unknownAction,
    unknownChannel.

    These fixed answers are most of what the endpoint writes, and `dumps` spends far more on its
    per-call setup than on two strings (the encoder and its closures are built anew on every call)."""
    return Encoded('{"answer":' + quote(kind) + ',"id":' + quote(id) + "}")


_ABSENT = object()


def auth_answer_text(kind: str, auth_id: str, subprotocol: object = _ABSENT) -> Encoded:
    """`auth_answer(kind, auth_id[, subprotocol=subprotocol])` as `dumps` writes it: authenticated,
    denied."""
    text = '{"answer":' + quote(kind) + ',"authId":' + quote(auth_id)
    if subprotocol is _ABSENT:
        return Encoded(text + "}")
    value = quote(subprotocol) if type(subprotocol) is str else dumps(subprotocol)
    return Encoded(text + ',"subprotocol":' + value + "}")


def join(items: list[object]) -> str:
    """Answers, some already encoded, as the members of a JSON array (without the brackets)."""
    kinds = set(map(type, items))
    if Encoded not in kinds:
        return dumps(items)[1:-1]
    if len(kinds) == 1:
        return ",".join(items)  # type: ignore[arg-type]
    return ",".join([item if type(item) is Encoded else dumps(item) for item in items])  # type: ignore[misc]
