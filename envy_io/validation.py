"""The shell's validator: a line is checked before it can be accepted.

A bad line stays in the input; its error is printed above the prompt, wrapped
to the terminal (prompt_toolkit's validation toolbar is one line high and would
cut it), and the toolbar points at it. The line is neither run nor written nor
added to the history.
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.document import Document
from prompt_toolkit.validation import ValidationError, Validator

from envy_io.errors import UsageError

# In the toolbar when the error itself was printed above the prompt (the toolbar is one line high).
SEE_ABOVE = "not sent: see the error above; fix the line, or Ctrl-C to drop it"


class LineValidator(Validator):
    """``report``, when given, receives the whole error (printed above the prompt, wrapped)."""

    def __init__(self, check: Callable[[str], object], report: Callable[[str], None] | None = None) -> None:
        self.check = check
        self.report = report

    def validate(self, document: Document) -> None:
        text = document.text
        if not text.strip():
            return
        try:
            self.check(text)
        except UsageError as exc:
            if self.report is None:
                raise ValidationError(cursor_position=len(text), message=str(exc)) from None
            self.report(str(exc))
            raise ValidationError(cursor_position=len(text), message=SEE_ABOVE) from None
