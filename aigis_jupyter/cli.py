"""`aigis`: manage connections, keys, the store and the demo database from a terminal.

The CLI is one more front door on the same service the notebook uses, so a connection
added here shows up in `%aigis connections list` and the sidebar. Errors print one line
to stderr and exit 1; passwords are read from stdin or a no-echo prompt, never argv.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import AigisError, BadInput

if TYPE_CHECKING:
    from .service.contract import ServiceAPI
    from .service.core import AigisService
    from .settings import Settings



def action_text(action: Mapping[str, Any] | None) -> str:
    """A core error's next step in terminal terms."""
    if not action:
        return ""
    kind, name = action.get("kind"), action.get("name")
    return {
        "pick_model": "Models are picked per thread, in a notebook or the sidebar.",
        "pick_connection": "See yours with `aigis connections list`.",
        "add_connection": "See yours with `aigis connections list`, or add one with "
                          "`aigis connections add NAME --type ...`.",
        "new_thread": "Threads are created in a notebook or the sidebar.",
        "set_env": f"Set it in the environment: export {name}=...",
        "install_extra": f"Install it: pip install 'aigis-jupyter[{name}]'",
        "readonly_role": "Create a read-only login: aigis connections readonly-role NAME "
                         "(--apply --save-as NEW creates it and a connection that uses it).",
        "rotate_keys": "Re-seal the stored passwords: aigis keys rotate",
        "upgrade_store": "Upgrade the store: aigis db upgrade",
        "retry": "Try again.",
    }.get(str(kind), "")


def error_text(exc: AigisError) -> str:
    return " ".join(p for p in (exc.message, action_text(exc.action)) if p)


class _Ctx:
    """Built lazily so `aigis --help` does not open the store."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._service: AigisService | None = None

    @property
    def settings(self) -> Settings:
        return self.service.settings

    @property
    def service(self) -> AigisService:
        if self._service is None:
            from .service.core import AigisService
            from .settings import Settings

            self._service = AigisService(Settings.from_env())
        return self._service

    @property
    def scope(self) -> ServiceAPI:
        from .client import connect, current_username, service_url

        if service_url():  # hub mode: the shared service, as the hub user
            return connect()
        return self.service.user(current_username(self.args.user))

    def close(self) -> None:
        if self._service is not None:
            self._service.close()


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "yes" if v else "no"
        return str(v)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if args.no_password or args.db_type == "sqlite" or not sys.stdin.isatty():
        return None
    who = f"{args.username or 'user'}@{args.host or 'server'}"
    return getpass.getpass(f"Password for {who} (empty for none): ") or None


def _parse_options(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--option takes KEY=VALUE, got {item!r}.")
        out[key] = value
    return out


# -- commands -------------------------------------------------------------------------

def cmd_connections_add(ctx: _Ctx) -> int:
    a = ctx.args
    data: dict[str, Any] = {"name": a.name, "db_type": a.db_type, "host": a.host,
                            "port": a.port, "database": a.database, "username": a.username,
                            "options": _parse_options(a.option), "allow_write": a.allow_write}
    password = _read_password(a)
    if password:
        data["password"] = password
    conn = ctx.scope.create_connection(data, test=not a.no_test)
    tested = "" if a.no_test else " (connection tested)"
    print(f"Saved connection {conn['name']!r} ({conn['db_type']}){tested}.")
    _print_warnings(conn)
    return 0


def _print_warnings(result: Mapping[str, Any]) -> None:
    for w in result.get("warnings") or []:
        text = " ".join(p for p in (w["message"], action_text(w.get("action"))) if p)
        print(f"warning: {text}", file=sys.stderr)


def cmd_connections_readonly_role(ctx: _Ctx) -> int:
    a = ctx.args
    res = ctx.scope.readonly_role(a.name, role=a.role, apply=a.apply, save_as=a.save_as)
    if not res["applied"]:
        print(f"-- Run as an administrator; replace the password placeholder. Then add a "
              f"connection that logs in as {res['role']!r}.")
    for statement in res["sql"]:
        print(statement + ";")
    if res["applied"]:
        saved = res["connection"]
        where = f"; saved as connection {saved['name']!r}" if saved else ""
        print(f"Created the read-only login {res['role']!r}{where}.", file=sys.stderr)
    return 0


def cmd_connections_list(ctx: _Ctx) -> int:
    rows = ctx.scope.list_connections()
    if ctx.args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("No connections yet. Add one with `aigis connections add NAME --type postgres "
              "--host H --database D --username U`, or `aigis demo`.")
    else:
        from .service.contract import CONNECTION_COLUMNS

        _print_table(rows, CONNECTION_COLUMNS)
    return 0


def cmd_connections_test(ctx: _Ctx) -> int:
    res = ctx.scope.test_connection(ctx.args.name)
    version = res.get("server_version") or ""
    latency = res.get("latency_ms")
    extra = f" in {latency:.0f} ms" if isinstance(latency, (int, float)) else ""
    print(f"OK: {ctx.args.name!r} answered{extra}. {version}".rstrip())
    _print_warnings(res)
    return 0


def cmd_connections_remove(ctx: _Ctx) -> int:
    ctx.scope.delete_connection(ctx.args.name)
    print(f"Removed connection {ctx.args.name!r}.")
    return 0


def cmd_keys_rotate(ctx: _Ctx) -> int:
    n = ctx.service.rotate_keys()
    print(f"Re-sealed {n} password(s) with key {ctx.service.vault.key_id}.")
    return 0


def cmd_db_upgrade(ctx: _Ctx) -> int:
    store = ctx.service.store  # opening the store migrates it to head
    h = store.health()
    print(f"Store {h['url']} is at revision {h.get('revision')} (head {h.get('head')}).")
    if h.get("error"):
        print(f"{h['error']} {action_text(h.get('action'))}".strip(), file=sys.stderr)
    return 0 if h.get("at_head") else 1


def cmd_demo(ctx: _Ctx) -> int:
    conn = ctx.scope.ensure_demo(ctx.args.path, ctx.args.name)
    name, where = conn["name"], conn["host"]
    print({"created": f"Demo database at {where}, registered as connection {name!r}.",
           "unchanged": f"Demo database at {where}, already registered as connection {name!r}.",
           "updated": f"Demo database at {where}; connection {name!r} now points to it."}[
        conn["status"]])
    return 0


def cmd_health(ctx: _Ctx) -> int:
    h = ctx.service.health()
    print(json.dumps(h, indent=2))
    return 0 if h.get("ok") else 1


# -- parser ---------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aigis", description="Chat with your databases from "
                                "Jupyter: manage connections, keys, the store and the demo.")
    p.add_argument("--version", action="version", version=f"aigis-jupyter {__version__}")
    p.add_argument("--user", help="act as this user (default: $JUPYTERHUB_USER or your login)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    conns = sub.add_parser("connections", aliases=["conn"], help="add, list, test, remove")
    csub = conns.add_subparsers(dest="action", metavar="ACTION")
    csub.required = True
    add = csub.add_parser("add", help="save a connection (tested first)")
    add.add_argument("name")
    add.add_argument("--type", dest="db_type", required=True,
                     help="postgres, mysql or sqlite")
    add.add_argument("--host", help="server name or address; for sqlite the file path")
    add.add_argument("--port", type=int)
    add.add_argument("--database", "--db")
    add.add_argument("--username", "--user", "-U", dest="username",
                     help="the database user to log in as")
    pw = add.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of stdin")
    pw.add_argument("--no-password", action="store_true", help="do not prompt for a password")
    add.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                     help="driver option, e.g. sslmode=require (repeatable)")
    add.add_argument("--allow-write", action="store_true",
                     help="let statements modify data (off by default)")
    add.add_argument("--no-test", action="store_true", help="save without connecting first")
    add.set_defaults(func=cmd_connections_add)
    ls = csub.add_parser("list", aliases=["ls"], help="your connections (never passwords)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_connections_list)
    t = csub.add_parser("test", help="connect and run a trivial query")
    t.add_argument("name")
    t.set_defaults(func=cmd_connections_test)
    ro = csub.add_parser("readonly-role", help="the SQL of a login that can only read this "
                         "connection's database (--apply runs it with the connection's login)")
    ro.add_argument("name")
    ro.add_argument("--role", default="aigis_readonly", help="the login to create")
    ro.add_argument("--apply", action="store_true",
                    help="create it now (the connection's login must be an administrator)")
    ro.add_argument("--save-as", help="with --apply: save a connection that logs in as it")
    ro.set_defaults(func=cmd_connections_readonly_role)
    rm = csub.add_parser("remove", aliases=["rm"], help="delete a connection")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_connections_remove)

    keys = sub.add_parser("keys", help="encryption keys")
    ksub = keys.add_subparsers(dest="action", metavar="ACTION")
    ksub.required = True
    ksub.add_parser("rotate", help="re-seal every password with the first key of "
                    "MASTER_ENCRYPTION_KEY").set_defaults(func=cmd_keys_rotate)

    db = sub.add_parser("db", help="the extension's own store")
    dsub = db.add_subparsers(dest="action", metavar="ACTION")
    dsub.required = True
    dsub.add_parser("upgrade", help="apply migrations (also done at every start)"
                    ).set_defaults(func=cmd_db_upgrade)

    demo = sub.add_parser("demo", help="build the demo SQLite database and register it")
    demo.add_argument("--path", help="where to write it (default: the data dir)")
    demo.add_argument("--name", default="demo", help="connection name (default: demo)")
    demo.set_defaults(func=cmd_demo)

    sub.add_parser("health", help="store connectivity and migrations").set_defaults(
        func=cmd_health)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = _Ctx(args)
    try:
        return int(args.func(ctx))
    except AigisError as exc:
        if args.debug:
            raise
        print(f"error: {error_text(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unexpected environment: still one clear line
        if args.debug:
            raise
        print(f"error: {exc.__class__.__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return 1
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
