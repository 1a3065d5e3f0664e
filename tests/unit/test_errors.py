"""The exception tree: kinds that no `except` order can confuse."""

from __future__ import annotations

import inspect
import itertools

import pytest

from wanedit import errors
from wanedit.errors import (
    MalformedResponse,
    OutcomeUnknown,
    ProviderError,
    StorageError,
    TerminalProviderError,
    TerminalStorageError,
    TransientProviderError,
    TransientStorageError,
    WaneditError,
)

CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, WaneditError) and cls.__module__ == errors.__name__
]
# What a handler does with each kind: retry, fail, or look at the provider's task list.
KINDS = [TransientProviderError, TerminalProviderError, OutcomeUnknown]
STORAGE_KINDS = [TransientStorageError, TerminalStorageError]


@pytest.mark.parametrize(("a", "b"), list(itertools.permutations(KINDS + STORAGE_KINDS, 2)))
def test_no_kind_is_another(a: type, b: type) -> None:
    assert not issubclass(a, b)


def test_a_lost_create_is_neither_retried_nor_failed() -> None:
    error = OutcomeUnknown("OutcomeUnknown", "the connection broke after the request was sent")
    assert isinstance(error, ProviderError)
    assert not isinstance(error, TransientProviderError | TerminalProviderError)


def test_a_malformed_answer_is_transient() -> None:
    assert issubclass(MalformedResponse, TransientProviderError)


def test_each_family_base_catches_its_kinds() -> None:
    assert all(issubclass(kind, ProviderError) for kind in KINDS)
    assert all(issubclass(kind, StorageError) for kind in STORAGE_KINDS)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_each_class_has_a_one_line_docstring_and_is_drawn(cls: type) -> None:
    doc = cls.__doc__ or ""
    assert doc.strip() and "\n" not in doc.strip()
    assert f"-- {cls.__name__} " in (errors.__doc__ or "") or cls is WaneditError


@pytest.mark.parametrize(
    ("raised", "caught"),
    [
        (TransientProviderError("Throttling", "slow down"), "retry"),
        (MalformedResponse("MalformedResponse", "not JSON"), "retry"),
        (TerminalProviderError("InvalidParameter", "bad size"), "fail"),
        (OutcomeUnknown("OutcomeUnknown", "timed out"), "reconcile"),
    ],
)
def test_any_except_order_gives_the_same_answer(raised: ProviderError, caught: str) -> None:
    handlers = [
        (TransientProviderError, "retry"),
        (TerminalProviderError, "fail"),
        (OutcomeUnknown, "reconcile"),
    ]
    for order in itertools.permutations(handlers):
        try:
            raise raised
        except ProviderError as exc:
            answer = next(what for kind, what in order if isinstance(exc, kind))
        assert answer == caught
