"""`%aigis chat`: a chat panel built from ipywidgets, for frontends without the sidebar.

It renders the same event stream as the magic. Turns run on a worker thread so the
kernel stays responsive, and each answer's widgets update in place as tokens arrive.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .errors import AigisError
from .rendering import TurnView, chart_bundle, error_message, table_html, thread_label

if TYPE_CHECKING:
    from .service.contract import ServiceAPI

_NONE = "(none)"


class _Bundle:
    """Hands a ready MIME bundle to an Output widget."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _repr_mimebundle_(self, **_: Any) -> dict[str, Any]:
        return self.data


class ChatWidget(w.VBox):
    """Question box, streamed answers with SQL/table/chart, connection/model/thread pickers."""

    def __init__(self, scope: ServiceAPI, *, preview_rows: int = 20, **kwargs: Any) -> None:
        self.scope = scope
        self.preview_rows = preview_rows
        self._worker: threading.Thread | None = None
        self.connection = w.Dropdown(description="Database", layout=w.Layout(width="auto"))
        self.model = w.Dropdown(description="Model", layout=w.Layout(width="auto"))
        self.thread = w.Dropdown(description="Thread", layout=w.Layout(width="auto"))
        self.new_thread = w.Button(description="New thread", icon="plus")
        self.question = w.Textarea(placeholder="Ask your database…", layout=w.Layout(width="100%"))
        self.send = w.Button(description="Send", button_style="primary", icon="paper-plane")
        self.stop = w.Button(description="Stop", icon="stop", disabled=True)
        self.transcript = w.VBox()
        self.notice = w.HTML()
        self.send.on_click(lambda _b: self.ask())
        self.stop.on_click(lambda _b: self.cancel())
        self.new_thread.on_click(lambda _b: self._create_thread())
        self.refresh()
        self.thread.observe(lambda _c: self._show_history(), names="value")
        bar = w.HBox([self.connection, self.model, self.thread, self.new_thread])
        super().__init__(
            [bar, self.transcript, self.question, w.HBox([self.send, self.stop]), self.notice],
            **kwargs,
        )

    # -- pickers ---------------------------------------------------------------------

    def refresh(self) -> None:
        conns = [c["name"] for c in self.scope.list_connections()]
        self.connection.options = [_NONE, *conns]
        models = [m["name"] for m in self.scope.list_models() if m["available"]]
        self.model.options = [_NONE, *models]
        threads = self.scope.list_threads()
        if not threads:
            threads = [self.scope.create_thread(title="chat")]
        current = self.thread.value
        self.thread.options = [(thread_label(t), t["id"]) for t in threads]  # newest first
        ids = [t["id"] for t in threads]
        self.thread.value = current if current in ids else ids[0]
        self._sync_pickers()

    def _sync_pickers(self) -> None:
        if not self.thread.value:
            return
        t = self.scope.get_thread(self.thread.value)
        conn = t.get("connection_name")
        self.connection.value = conn if conn in self.connection.options else _NONE
        model = t.get("model_name")
        self.model.value = model if model in self.model.options else _NONE

    def _create_thread(self) -> None:
        t = self.scope.create_thread(title=f"chat {len(self.thread.options) + 1}")
        self.thread.options = [(thread_label(t), t["id"]), *self.thread.options]
        self.thread.value = t["id"]

    def _show_history(self) -> None:
        self.transcript.children = []
        if self.thread.value:
            self._sync_pickers()
            for m in self.scope.get_messages(self.thread.value):
                who = "You" if m["role"] == "user" else "Aigis"
                self.transcript.children += (w.HTML(f"<b>{who}:</b> {_esc(m['content'])}"),)

    # -- a turn ----------------------------------------------------------------------

    def ask(self, text: str | None = None) -> None:
        """Send the question box (or `text`); the answer streams into the transcript."""
        question = (text if text is not None else self.question.value).strip()
        if not question or (self._worker and self._worker.is_alive()):
            return
        self.question.value = ""
        tid = self.thread.value
        try:
            if self.connection.value != _NONE:
                self.scope.set_thread_connection(tid, self.connection.value)
            if self.model.value != _NONE:
                self.scope.set_thread_model(tid, self.model.value)
        except AigisError as exc:
            self.notice.value = f"⚠ {_esc(error_message(exc.to_dict()))}"
            return
        self.notice.value = ""
        answer = w.HTML()
        charts = w.Output()
        self.transcript.children += (
            w.HTML(f"<b>You:</b> {_esc(question)}"),
            answer,
            charts,
        )
        self.send.disabled, self.stop.disabled = True, False
        self._worker = threading.Thread(
            target=self._run, args=(tid, question, answer, charts), daemon=True
        )
        self._worker.start()

    def _run(self, tid: str, question: str, answer: w.HTML, charts: w.Output) -> None:
        from .client import stream_sync

        view = TurnView()
        try:
            for event in stream_sync(lambda: self.scope.chat(tid, question)):
                view.feed(event)
                if event["type"] == "chart" and view.chart:
                    charts.append_display_data(_Bundle(chart_bundle(view.chart)))
                answer.value = self._answer_html(view)
        except AigisError as exc:
            view.feed({"type": "error", **exc.to_dict()})
        except Exception as exc:  # the panel must survive anything a turn throws
            view.feed({"type": "error", "message": f"Unexpected error: {exc}", "reason": "bug"})
        finally:
            view.done = True
            answer.value = self._answer_html(view)
            self.last_view = view
            self.send.disabled, self.stop.disabled = False, True

    def _answer_html(self, view: TurnView) -> str:
        body = view.html()
        if view.table:
            rows = dict(view.table, rows=(view.table.get("rows") or [])[: self.preview_rows])
            body += table_html(rows)
        return f"<b>Aigis:</b> {body}"

    def cancel(self) -> None:
        if self._worker and self._worker.is_alive():
            self.scope.cancel(self.thread.value)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running turn ends (for scripts and tests)."""
        if self._worker:
            self._worker.join(timeout)


def _esc(s: str) -> str:
    import html

    return html.escape(s)
