"""FormScreen: a modal dialog of labelled inputs, checked before anything is sent.

Subclasses name their fields and implement ``check`` (pure: values in, errors per field
or a request body out; see :mod:`ratectl.tui.forms`). Submitting (Enter in any field,
Ctrl+S, or the button) shows each error under its field and keeps the dialog open; a
clean form is sent by ``submit`` (a blocking API call given by the app) in a thread
worker. The daemon's refusal is shown in the dialog, which stays open to fix and
resend; success dismisses it with the daemon's reply. A refusal for lack of permission
also posts ``Forbidden`` up to the app (which turns read-only) and hides the button.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ratectl.errors import AuthError, CtlError
from ratectl.tui.forms import Errors

Submit = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    placeholder: str = ""
    value: str = ""


class FormScreen(ModalScreen[Any]):
    """A dialog; dismissed with the daemon's reply (or the checked body), None if cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Submit"),
    ]

    DEFAULT_CSS = """
    FormScreen {
        align: center middle;
    }
    FormScreen > #dialog {
        width: 72;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    FormScreen #title {
        text-style: bold;
        width: 1fr;
    }
    FormScreen #subtitle {
        color: $text-muted;
        width: 1fr;
    }
    FormScreen .field {
        height: 1;
        margin-top: 1;
    }
    FormScreen .field Label {
        width: 12;
    }
    FormScreen .field Input {
        width: 1fr;
        padding: 0 1;
        background: $boost;
    }
    FormScreen .field Input:focus {
        background: $primary 30%;
    }
    FormScreen .field Input.-rejected {
        background: $error 30%;
    }
    FormScreen .field-error {
        color: $error;
        display: none;
        width: 1fr;
        padding-left: 12;
    }
    FormScreen .field-error.-shown {
        display: block;
    }
    FormScreen #daemon-error {
        color: $error;
        text-style: bold;
        display: none;
        margin-top: 1;
    }
    FormScreen #daemon-error.-shown {
        display: block;
    }
    FormScreen #buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    FormScreen #buttons Button {
        margin-left: 2;
    }
    """

    busy = reactive(False)

    class Succeeded(Message):
        def __init__(self, result: Any) -> None:
            super().__init__()
            self.result = result

    class Failed(Message):
        def __init__(self, error: CtlError) -> None:
            super().__init__()
            self.error = error

    class Forbidden(Message):
        """The daemon refused the key for this change: the app turns read-only."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    TITLE_TEXT = ""
    SUBMIT_LABEL = "Submit"

    def __init__(self, *, subtitle: str, submit: Submit | None) -> None:
        super().__init__()
        self.subtitle = subtitle
        self.submit = submit

    def fields(self) -> Sequence[Field]:
        raise NotImplementedError

    def check(self, values: dict[str, str]) -> tuple[Errors, dict[str, Any] | None]:
        raise NotImplementedError

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body as sent (a subclass may add to it, e.g. an idempotency key)."""
        return body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.TITLE_TEXT, id="title")
            yield Label(self.subtitle, id="subtitle")
            for f in self.fields():
                with Horizontal(classes="field"):
                    yield Label(f.label)
                    yield Input(f.value, placeholder=f.placeholder, id=f.key, compact=True)
                yield Label("", id=f"{f.key}-error", classes="field-error")
            yield Static("", id="daemon-error")
            with Horizontal(id="buttons"):
                yield Button(self.SUBMIT_LABEL, id="submit", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def values(self) -> dict[str, str]:
        return {f.key: self.query_one(f"#{f.key}", Input).value for f in self.fields()}

    def errors_shown(self) -> dict[str, str]:
        """The errors under the fields now (for tests and screen readers)."""
        out = {}
        for f in self.fields():
            label = self.query_one(f"#{f.key}-error", Label)
            if label.has_class("-shown"):
                out[f.key] = str(label.content)
        return out

    def daemon_error(self) -> str:
        static = self.query_one("#daemon-error", Static)
        return str(static.content) if static.has_class("-shown") else ""

    def watch_busy(self, busy: bool) -> None:
        button = self.query_one("#submit", Button)
        button.disabled = busy
        button.label = "Sending..." if busy else self.SUBMIT_LABEL

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        if self.busy or not self.query_one("#submit", Button).display:
            return
        errors, body = self.check(self.values())
        self._show_errors(errors)
        self._show_daemon_error("")
        if errors or body is None:
            if errors:
                self.query_one(f"#{next(iter(errors))}", Input).focus()
            return
        if self.submit is None:
            self.dismiss(body)
            return
        self.busy = True
        self.send(self.request(body))

    @work(thread=True, exclusive=True, group="submit", exit_on_error=False)
    def send(self, body: dict[str, Any]) -> None:
        assert self.submit is not None
        try:
            result = self.submit(body)
        except CtlError as exc:
            self.post_message(self.Failed(exc))
        except Exception as exc:  # a bug: show it here rather than stay "Sending..."
            self.post_message(self.Failed(CtlError(f"internal error: {type(exc).__name__}: {exc}")))
        else:
            self.post_message(self.Succeeded(result))

    def on_form_screen_succeeded(self, message: FormScreen.Succeeded) -> None:
        message.stop()
        self.busy = False
        self.dismiss(message.result)

    def on_form_screen_failed(self, message: FormScreen.Failed) -> None:
        message.stop()
        self.busy = False
        self._show_daemon_error(message.error.message)
        if isinstance(message.error, AuthError):
            self.query_one("#submit", Button).display = False
            self.post_message(self.Forbidden(message.error.message))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.action_cancel()

    def _show_errors(self, errors: Errors) -> None:
        for f in self.fields():
            label = self.query_one(f"#{f.key}-error", Label)
            label.update(errors.get(f.key, ""))
            label.set_class(f.key in errors, "-shown")
            self.query_one(f"#{f.key}", Input).set_class(f.key in errors, "-rejected")

    def _show_daemon_error(self, text: str) -> None:
        static = self.query_one("#daemon-error", Static)
        static.update(f"daemon: {text}" if text else "")
        static.set_class(bool(text), "-shown")
