"""The notebook front door: `%%aigis` asks a question, `%aigis` manages the session.

Loading is cheap (IPython and traitlets only); the service, pandas and LangGraph are
imported on first use. Every rule lives in the core: this module only translates
arguments into service calls and events into displays.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import threading
import time
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Bool, Float, Int
from traitlets.config import Configurable

from .commands import Subcommands
from .errors import AigisError, BadInput
from .rendering import (
    TurnView,
    chart_bundle,
    error_html,
    error_message,
)
from .teach_commands import TEACH_HELP, TeachCommands

if TYPE_CHECKING:
    from .service.contract import ServiceAPI

_VAR = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")

HELP = """\
%%aigis [--thread NAME] [--conn NAME] [--model NAME] [--no-chart] [-o VAR] [--sql-only]
<question>                      ask in plain language; {var} inserts a notebook variable

%aigis connections list | test NAME | use NAME | remove NAME
%aigis connections readonly-role NAME [--role R] [--apply [--save-as NEW]]
                                the SQL of a read-only login for a connection
%aigis connections add NAME --type postgres|mysql|sqlite [--host H] [--port P]
                       [--database D] [--username U] [--password] [--allow-write]
                       [--replace]
                                (--password prompts; the password is never shown or saved here)
%aigis model list | use NAME
%aigis thread new [NAME] | list | use NAME | history
%aigis schema [TABLE] [--conn NAME]
                                tables with row counts, or one table's columns and keys
%aigis demo [PATH]              build the demo database and register it as 'demo'
%aigis sql                      the last SQL that ran
%aigis sql STATEMENT            run your own SQL through the same guard
%%aigis sql [--conn NAME] [-o VAR] [--chart [MARK]]
<SQL>                           the same as a cell; the DataFrame is the value (no model)
%aigis chat                     a chat widget (ipywidgets)
""" + TEACH_HELP + "%aigis help\n"




#: A failed question or command fails the cell with one short line and no traceback (IPython
#: prints a `UsageError` as its message alone), so "Run All" and notebook validation stop
#: there instead of running on without a result.
AigisCellError = UsageError


@magics_class
class AigisMagics(Subcommands, TeachCommands, Magics, Configurable):
    """`%%aigis` / `%aigis`; configurable with `%config AigisMagics.<trait> = value`.

    Traits only shape what the notebook shows; what the product does (row cap, timeouts,
    default model, ...) is a `Settings` field, the same for every door."""

    chart = Bool(True, help="Draw a chart when it helps (off: --no-chart).").tag(config=True)
    update_interval = Float(
        0.02, help="Seconds between live updates of the answer while tokens stream."
    ).tag(config=True)
    prewarm = Bool(
        True, help="Import the agent's libraries in the background after %load_ext, so the "
        "first question does not wait for them."
    ).tag(config=True)
    widget_rows = Int(20, help="Rows shown in the chat widget's table preview.").tag(config=True)
    return_dataframe = Bool(True, help="Return the result DataFrame as the cell's value.").tag(
        config=True
    )

    def __init__(self, shell: Any = None, scope: ServiceAPI | None = None) -> None:
        Configurable.__init__(self, config=shell.config if shell is not None else None)
        Magics.__init__(self, shell=shell)
        self._scope = scope
        self._thread_id: str | None = None
        # what this notebook picked, for the threads it creates next
        self.default_model: str | None = None
        self.default_connection: str | None = None
        self.last_sql: str | None = None
        self.last_view: TurnView | None = None

    # -- session ---------------------------------------------------------------------

    @property
    def scope(self) -> ServiceAPI:
        if self._scope is None:
            from .client import connect

            self._scope = connect()
        return self._scope

    def thread_id(self, name: str | None = None) -> str:
        """The current thread, or the one titled `name` (created when missing)."""
        if name:
            for t in self.scope.list_threads():
                if t.get("title") == name:
                    self._thread_id = t["id"]
                    return t["id"]
            self._thread_id = self._new_thread(name)
        elif self._thread_id is None:
            self._thread_id = self._new_thread("notebook")
        return self._thread_id

    def _new_thread(self, title: str) -> str:
        tid = self.scope.create_thread(title=title)["id"]
        if self.default_model:
            self.scope.set_thread_model(tid, self.default_model)
        if self.default_connection:
            self.scope.set_thread_connection(tid, self.default_connection)
        return tid

    # -- the magic ---------------------------------------------------------------------

    @magic_arguments()
    @argument("--thread", "-t", default=None, help="thread name (created if new)")
    @argument("--conn", "-c", default=None, help="connection name for this thread")
    @argument("--model", "-m", default=None, help="model name for this thread")
    @argument("--no-chart", action="store_true", help="never draw a chart")
    @argument("-o", "--out", default=None, help="also bind the DataFrame to this variable")
    @argument("--sql-only", action="store_true", help="write and check the SQL, do not run it")
    @argument("rest", nargs="*", help="subcommand (line magic) or question")
    @line_cell_magic
    def aigis(self, line: str = "", cell: str | None = None) -> Any:
        """Ask your database a question (cell) or manage connections, models, threads (line)."""
        try:
            if cell is not None and line.split()[:1] == ["sql"]:
                return self._sql_cell(line.split()[1:], cell)
            if cell is not None and line.split()[:1] == ["notes"]:
                return self._notes(shlex.split(line)[1:], cell)
            if cell is None:
                return self._line(line)
            try:
                args = parse_argstring(self.aigis, line)
            except SystemExit as exc:
                raise BadInput(f"Could not read the options '{line}'. {HELP}") from exc
            question = self._interpolate(cell.strip() + " " + " ".join(args.rest)).strip()
            if not question:
                raise BadInput("Write a question in the cell body, e.g. 'How many orders?'")
            return self._ask(question, args)
        except AigisError as exc:
            message = error_message(exc.to_dict())
            display(error_html(message), raw=True)
            raise AigisCellError(message) from None

    def _interpolate(self, text: str) -> str:
        ns = self.shell.user_ns if self.shell is not None else {}

        def sub(m: re.Match[str]) -> str:
            if m.group(0) in ("{{", "}}"):
                return m.group(0)[0]
            name = m.group(1)
            if name not in ns:
                raise BadInput(
                    f"{{{name}}} names no notebook variable; define it or write {{{{{name}}}}} "
                    "for literal braces."
                )
            return str(ns[name])

        return _VAR.sub(sub, text)

    def _ask(self, question: str, args: Any) -> Any:
        # the first visible feedback comes before anything heavy (the service, the store)
        view = TurnView()
        handle = display(view.bundle(), raw=True, display_id=True)
        _prewarm.question()
        try:
            tid = self.thread_id(args.thread)
            if args.conn:
                self.scope.set_thread_connection(tid, args.conn)
            if args.model:
                self.scope.set_thread_model(tid, args.model)
        except BaseException:
            handle.update({"text/plain": ""}, raw=True)  # the error line says what happened
            raise
        chart = self.chart and not args.no_chart
        last = 0.0
        from .client import stream_sync

        stream = stream_sync(
            lambda: self.scope.chat(tid, question, chart=chart, sql_only=args.sql_only)
        )
        try:
            for event in stream:
                view.feed(event)
                if event["type"] == "chart" and view.chart:
                    display(chart_bundle(view.chart), raw=True)
                now = time.monotonic()
                if event["type"] != "chunk" or now - last >= self.update_interval:
                    handle.update(view.bundle(), raw=True)
                    last = now
        except KeyboardInterrupt:
            self.scope.cancel(tid)
            view.feed({"type": "error", "message": "Cancelled.", "reason": "cancelled"})
            view.done = True
        finally:
            stream.close()
        handle.update(view.bundle(), raw=True)
        self.last_view = view
        if view.sql:
            self.last_sql = view.sql
        if view.error:
            raise AigisCellError(f"The question failed: {error_message(view.error)}")
        if args.sql_only or view.table is None or not view.sql:
            return None  # nothing ran (SQL only, or answered from the schema)
        df = self.scope.last_result(tid)
        if df is None:
            return None
        if args.out and self.shell is not None:
            self.shell.user_ns[args.out] = df
        return df if self.return_dataframe else None

    # -- line subcommands --------------------------------------------------------------

    def _line(self, line: str) -> Any:
        head, _, statement = line.strip().partition(" ")
        if head == "sql" and statement.strip():  # SQL keeps its quotes: no shell splitting
            return self._run_sql(statement)
        words = shlex.split(line)
        if not words or words[0] in ("help", "-h", "--help"):
            print(HELP)
            return None
        cmd, rest = words[0], words[1:]
        handler = {
            "connections": self._connections,
            "connection": self._connections,
            "connect": self._connect,
            "conn": self._connections,
            "model": self._model,
            "models": self._model,
            "thread": self._thread,
            "threads": self._thread,
            "sql": self._sql,
            "schema": self._schema,
            "chat": self._chat,
            "demo": self._demo,
            "verify": self._verify,
            "examples": self._examples,
            "example": self._examples,
            "notes": self._notes,
        }.get(cmd)
        if handler is None:
            raise BadInput(f"Unknown subcommand '{cmd}'. Try %aigis help.\n\n{HELP}")
        return handler(rest)



_SUBCOMMANDS = {
    "connections": ["list", "add", "test", "use", "remove", "readonly-role"],
    "model": ["list", "use"],
    "thread": ["new", "list", "use", "history"],
    "sql": [],
    "schema": [],
    "chat": [],
    "demo": [],
    "verify": [],
    "examples": ["list", "add", "export", "remove"],
    "notes": [],
    "help": [],
}


def complete(magics: AigisMagics, line: str) -> list[str]:
    """Tab completion for `%aigis`: subcommands, then connection, model or thread names."""
    words = line.split()
    ends_in_space = line.endswith(" ")
    typed = words[1:] if words and words[0].lstrip("%") == "aigis" else words
    if not ends_in_space and typed:
        typed, prefix = typed[:-1], typed[-1]
    else:
        prefix = ""
    try:
        if not typed:
            options = list(_SUBCOMMANDS)
        elif len(typed) == 1:
            options = _SUBCOMMANDS.get(typed[0], [])
        elif len(typed) == 2 and typed[1] in ("test", "use", "remove"):
            if typed[0] == "connections":
                options = [c["name"] for c in magics.scope.list_connections()]
            elif typed[0] == "model":
                options = [m["name"] for m in magics.scope.list_models() if m["available"]]
            else:
                options = [t["title"] for t in magics.scope.list_threads() if t.get("title")]
        else:
            options = []
    except AigisError:
        options = []
    return [o for o in options if o.startswith(prefix)]


class _Prewarm:
    """The background import after `%load_ext`, and how a question waits for it.

    Two threads importing at once share one interpreter lock and slow each other down
    (each file read hands the lock over), so a question asked while the thread runs waits
    for it to finish what the question needs, then imports nothing twice; pandas (only
    for the DataFrame the cell returns) is left to the end of that question.
    """

    NEEDED = ("aigis_jupyter.store.repo", "sqlalchemy.dialects.sqlite",
              "aigis_jupyter.service.core", "aigis_jupyter.service.scope",
              "aigis_jupyter.service.deps", "aigis_jupyter.agent.runner",
              "aigis_jupyter.agent.graph", "aigis_jupyter.agent.linking",
              "aigis_jupyter.databases.execute", "aigis_jupyter.databases.values",
              "langchain_core.language_models.chat_models", "sqlglot")

    def __init__(self) -> None:
        self.started = False
        self.asking = threading.Event()
        self.ready = threading.Event()

    def start(self) -> None:
        if self.started:  # loaded again: one thread per process is enough
            return
        self.started = True
        threading.Thread(target=self._run, name="aigis-prewarm", daemon=True).start()

    def _run(self) -> None:
        import importlib

        try:
            for name in self.NEEDED:
                importlib.import_module(name)
        except Exception:  # the first question reports any real problem, with context
            return
        finally:
            self.ready.set()
        if not self.asking.is_set():
            with contextlib.suppress(Exception):
                importlib.import_module("pandas")

    def question(self) -> None:
        """Called as a question starts: wait for the imports it needs, if under way."""
        self.asking.set()
        if self.started:
            self.ready.wait(timeout=60)


_prewarm = _Prewarm()


def load_ipython_extension(ipython: Any) -> None:
    magics = AigisMagics(shell=ipython)
    ipython.register_magics(magics)
    if magics.prewarm and os.environ.get("AIGIS_PREWARM", "1") != "0":
        _prewarm.start()
    ipython.set_hook(
        "complete_command", lambda _self, event: complete(magics, event.line), str_key="%aigis"
    )
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)


def unload_ipython_extension(ipython: Any) -> None:
    ipython.configurables[:] = [c for c in ipython.configurables if not isinstance(c, AigisMagics)]
