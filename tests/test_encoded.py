"""The answers the engine writes as text must be exactly what `dumps` writes for the same answer."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from logux_sync.encoded import Encoded, answer_text, auth_answer_text, join
from logux_sync.protocol import answer, auth_answer, dumps

KINDS = ["approved", "forbidden", "processed", "unknownAction", "unknownChannel"]
# Every kind of character the encoder escapes: quotes, backslashes, controls, non-ASCII, lone surrogates.
AWKWARD = ['"', "\\", "\x00\n\t\x1f\x7f", "é 中 😀", "\u2028\u2029", "\ud800", "\udfff x \ud83d", ""]
TEXT = st.text(st.characters(codec=None, exclude_categories=())) | st.sampled_from(AWKWARD)


class Str(str):
    """A str subclass: written by its value, as the encoder writes it."""


@given(kind=st.sampled_from(KINDS), id=TEXT)
@example(kind="approved", id="1564508138460 380:R7BNGAP5:px3-J3oc 7")
def test_answer_text_is_what_dumps_writes(kind: str, id: str) -> None:
    assert answer_text(kind, id) == dumps(answer(kind, id))
    assert answer_text(kind, Str(id)) == dumps(answer(kind, Str(id)))


@given(auth_id=TEXT, subprotocol=TEXT | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.none())
@example(auth_id="auth5", subprotocol="1.0.0")
@example(auth_id="auth5", subprotocol=1)
def test_auth_answer_text_is_what_dumps_writes(auth_id: str, subprotocol: object) -> None:
    assert auth_answer_text("denied", auth_id) == dumps(auth_answer("denied", auth_id))
    expected = dumps(auth_answer("authenticated", auth_id, subprotocol=subprotocol))
    assert auth_answer_text("authenticated", auth_id, subprotocol) == expected


@pytest.mark.parametrize(
    "items",
    [
        [],
        [answer("approved", "1 a:b:c 0"), answer("processed", "1 a:b:c 0")],
        [answer("error", "1 a:b:c 0", details="Bad\n\ud800"), {"answer": "resend", "id": "x", "users": ["1"]}],
    ],
)
def test_join_writes_encoded_dict_and_mixed_answers_alike(items: list[dict[str, object]]) -> None:
    expected = dumps(items)[1:-1]
    assert join(items) == expected
    assert join([Encoded(dumps(item)) for item in items]) == expected
    mixed = [Encoded(dumps(item)) if i % 2 else item for i, item in enumerate(items)]
    assert join(mixed) == expected
