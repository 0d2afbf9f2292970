"""The `%aigis` subcommands (connections, models, threads, schema, SQL, demo, chat).

A mixin of `magics.AigisMagics`: each method turns its words into one service call and its
result into a display. The rules are the core's.
"""

from __future__ import annotations

import argparse
import html
from getpass import getpass
from typing import TYPE_CHECKING, Any

from IPython.display import HTML, display

from .errors import BadInput
from .rendering import chart_bundle, error_html, schema_frame, warnings_text

if TYPE_CHECKING:
    from .service.contract import ServiceAPI


class _ArgError(Exception):
    """argparse wants to exit: report the usage message instead."""


class Subcommands:
    """What `%aigis WORD ...` does; mixed into `AigisMagics`."""

    scope: ServiceAPI
    shell: Any
    default_model: str | None
    default_connection: str | None
    last_sql: str | None
    return_dataframe: bool
    widget_rows: int
    _thread_id: str | None

    # defined by AigisMagics, which comes first in the method order
    thread_id: Any
    _new_thread: Any
    _interpolate: Any

    def _connections(self, rest: list[str]) -> Any:
        sub = rest[0] if rest else "list"
        if sub == "list":
            from .service.contract import CONNECTION_COLUMNS

            return _frame(self.scope.list_connections(), list(CONNECTION_COLUMNS))
        if sub == "add":
            return self._connect(rest[1:])
        if len(rest) < 2:
            raise BadInput(f"Usage: %aigis connections {sub} NAME")
        name = rest[1]
        if sub == "test":
            res = self.scope.test_connection(name)
            version = res.get("server_version", "")
            print(f"✓ {name} is reachable ({version}, {res.get('latency_ms', 0):.0f} ms)")
            _show_warnings(res)
            return None
        if sub == "readonly-role":
            return self._readonly_role(rest[1:])
        if sub == "use":
            self.scope.get_connection(name)
            self.scope.set_thread_connection(self.thread_id(), name)
            print(f"This thread now asks '{name}'.")
            return None
        if sub in ("remove", "delete", "rm"):
            self.scope.delete_connection(name)
            print(f"Removed connection '{name}'.")
            return None
        raise BadInput(f"Unknown connections subcommand '{sub}'. Try %aigis help.")

    def _connect(self, rest: list[str]) -> Any:
        p = _Parser(prog="%aigis connections add", add_help=False)
        p.add_argument("name")
        p.add_argument("--type", dest="db_type", default="postgres")
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.add_argument("--database", "--db")
        p.add_argument("--user", "--username", dest="username")
        p.add_argument("--password", action="store_true", help="prompt for the password")
        p.add_argument("--allow-write", action="store_true")
        p.add_argument("--replace", action="store_true", help="overwrite a connection of that name")
        try:
            a = p.parse_args(rest)
        except _ArgError as exc:
            raise BadInput(str(exc)) from exc
        data: dict[str, Any] = {
            k: v for k, v in vars(a).items() if v is not None and k not in ("password", "replace")
        }
        if a.password:
            data["password"] = getpass(f"Password for {a.username or a.name}: ")
        exists = a.name in {c["name"] for c in self.scope.list_connections()}
        if exists and a.replace:  # a bad replacement is refused and the old one kept
            conn = self.scope.update_connection(a.name, data, test=True)
        else:
            conn = self.scope.create_connection(data, test=True)  # a bad one is never saved
        print(f"Saved connection '{conn['name']}' ({conn['db_type']}); it answered.")
        _show_warnings(conn)
        return None

    def _readonly_role(self, rest: list[str]) -> Any:
        p = _Parser(prog="%aigis connections readonly-role", add_help=False)
        p.add_argument("name")
        p.add_argument("--role", default="aigis_readonly")
        p.add_argument("--apply", action="store_true")
        p.add_argument("--save-as")
        try:
            a = p.parse_args(rest)
        except _ArgError as exc:
            raise BadInput(str(exc)) from exc
        res = self.scope.readonly_role(a.name, role=a.role, apply=a.apply, save_as=a.save_as)
        sql = ";\n".join(res["sql"]) + ";"
        if res["applied"]:
            saved = res["connection"]
            print(f"Created the read-only login '{res['role']}'"
                  + (f"; use it with %aigis connections use {saved['name']}" if saved else ""))
        else:
            print("Run this as an administrator (replace the password placeholder), then add "
                  f"a connection that logs in as '{res['role']}':")
        display(HTML(f"<pre><code>{_esc(sql)}</code></pre>"))
        return None

    def _model(self, rest: list[str]) -> Any:
        sub = rest[0] if rest else "list"
        if sub == "list":
            rows = [
                {
                    "name": m["name"],
                    "provider": m["provider"],
                    "aliases": ", ".join(m["aliases"]),
                    "available": m["available"],
                    "how to enable": "" if m["available"] else m["reason"],
                }
                for m in self.scope.list_models()
            ]
            return _frame(rows, ["name", "provider", "aliases", "available", "how to enable"])
        if sub == "use" and len(rest) > 1:
            res = self.scope.set_thread_model(self.thread_id(), rest[1])
            self.default_model = res.get("model") or rest[1]
            print(f"This thread now uses '{self.default_model}'.")
            return None
        raise BadInput("Usage: %aigis model list | use NAME")

    def _thread(self, rest: list[str]) -> Any:
        sub = rest[0] if rest else "list"
        if sub == "new":
            self._thread_id = self._new_thread(rest[1] if len(rest) > 1 else "notebook")
            print(f"New thread {self._thread_id}.")
            return None
        if sub == "list":
            return _frame(self.scope.list_threads(),
                          ["title", "connection_name", "model_name", "updated_at", "id"])
        if sub == "use" and len(rest) > 1:
            self.thread_id(rest[1])
            return None
        if sub == "history":
            for m in self.scope.get_messages(self.thread_id()):
                print(f"[{m['role']}] {m['content']}")
            return None
        raise BadInput("Usage: %aigis thread new [NAME] | list | use NAME | history")

    def _sql(self, rest: list[str]) -> Any:
        if not self.last_sql:
            print("No SQL yet: ask a question with %%aigis first.")
            return None
        display(HTML(f"<pre><code>{_esc(self.last_sql)}</code></pre>"))
        return None

    def _connection_ref(self) -> str:
        """The connection this notebook asks: its thread's, else the one it picked."""
        thread = self.scope.get_thread(self.thread_id())
        ref = thread["connection_id"] or self.default_connection
        if not ref:
            raise BadInput("This thread has no connection yet.",
                           action={"kind": "pick_connection"})
        return ref

    def _run_sql(self, statement: str, conn: str | None = None) -> Any:
        """Your own SQL, through the guard, the row cap and the audit like the agent's."""
        tid = self.thread_id()
        res = self.scope.run_sql(conn or self._connection_ref(), statement, thread_id=tid)
        self.last_sql = res.sql
        if res.truncated:
            print(f"Showing the first {res.row_count} rows (the row cap); narrow the query.")
        return res.df

    def _sql_cell(self, options: list[str], body: str) -> Any:
        """`%%aigis sql [--conn NAME] [-o VAR] [--chart MARK]`: an answer made reproducible,
        without the model (the sidebar inserts these cells)."""
        p = _Parser(prog="%%aigis sql", add_help=False)
        p.add_argument("--conn", "-c")
        p.add_argument("-o", "--out")
        p.add_argument("--chart", nargs="?", const="auto", default=None,
                       help="draw a chart of the result (bar, line, point, ...)")
        try:
            a = p.parse_args(options)
        except _ArgError as exc:
            raise BadInput(str(exc)) from exc
        statement = self._interpolate(body.strip())
        if not statement:
            raise BadInput("Write the SQL in the cell body, below `%%aigis sql`.")
        df = self._run_sql(statement, a.conn)
        if a.out and self.shell is not None:
            self.shell.user_ns[a.out] = df
        if a.chart and len(df.columns):
            from .charts import build_chart

            mark = None if a.chart == "auto" else a.chart
            spec = build_chart(df, None, None, mark)["spec"]
            display(chart_bundle(spec), raw=True)
        return df if self.return_dataframe else None

    def _schema(self, rest: list[str]) -> Any:
        p = _Parser(prog="%aigis schema", add_help=False)
        p.add_argument("table", nargs="?")
        p.add_argument("--conn", "-c")
        p.add_argument("--refresh", action="store_true")
        try:
            a = p.parse_args(rest)
        except _ArgError as exc:
            raise BadInput(str(exc)) from exc
        info = self.scope.schema(a.conn or self._connection_ref(), refresh=a.refresh)
        if not info["rows_exact"] and a.table is None:
            print("Row counts are the server's estimates.")
        return schema_frame(info, a.table)

    def _demo(self, rest: list[str]) -> Any:
        conn = self.scope.ensure_demo(rest[0] if rest else None)
        print(f"Demo database '{conn['name']}' ({conn['status']}): {conn['host']}")
        if self._thread_id is None and not self.default_connection:
            self.default_connection = conn["name"]
        return None

    def _chat(self, rest: list[str]) -> Any:
        from .widgets import ChatWidget

        w = ChatWidget(self.scope, preview_rows=self.widget_rows)
        display(w)
        return None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the kernel
        raise _ArgError(f"{message}\n{self.format_usage()}")


def _show_warnings(result: dict[str, Any]) -> None:
    text = warnings_text(result)
    if text:
        display(error_html(text), raw=True)


def _frame(rows: list[dict[str, Any]], cols: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)


def _esc(s: str) -> str:
    return html.escape(s)
