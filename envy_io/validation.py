"""The shell's validator: a line is checked before it can be accepted.

A bad line stays in the input with its one-line error in the toolbar; it is
neither run nor written nor added to the history.
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.document import Document
from prompt_toolkit.validation import ValidationError, Validator

from envy_io.errors import UsageError


class LineValidator(Validator):
    def __init__(self, check: Callable[[str], object]) -> None:
        self.check = check

    def validate(self, document: Document) -> None:
        text = document.text
        if not text.strip():
            return
        try:
            self.check(text)
        except UsageError as exc:
            raise ValidationError(cursor_position=len(text), message=str(exc)) from None
