"""MySQL and MariaDB through PyMySQL.

Layer 2 of the guard here: `SET SESSION TRANSACTION READ ONLY` + `START TRANSACTION READ
ONLY`, a server statement timeout (`max_statement_time` in seconds on MariaDB,
`max_execution_time` in ms on MySQL) and a driver that never sends multi-statements. The
session's `sql_mode` loses the flags that change how the server reads the text
(`NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES` and the modes that imply them): the parser reads
strings as MySQL does by default, and a server configured otherwise would read the end of
`'x\' , SLEEP(1) -- '` as code where the parser saw one string. Rows
stream through an unbuffered cursor; a cancel is a `KILL QUERY` from a second connection.
After every run the session is reset (`COM_RESET_CONNECTION`, which also rolls back): what a
statement can leave on a session past its transaction - `GET_LOCK` locks, table locks, open
`HANDLER`s, temporary tables, session and user variables - is gone before the connection
goes back to the pool.

Catalog: `information_schema` columns, tables and key usage in one query. Fingerprint:
there is no change counter, so the server sums CRC32s of the column, key and table rows;
only a few bytes cross the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import DatabaseError, QueryCancelled, QueryTimeout, SQLRefused
from ...scrub import scrub
from .. import runs, suggest
from ..catalog import Column, ForeignKey, Table
from ..engines import ConnectionSpec, Dialect, register_dialect

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["MySQLDialect"]

_CATALOG = """
SELECT 'c' AS kind, c.TABLE_NAME AS tname, t.TABLE_TYPE AS ttype, c.ORDINAL_POSITION AS pos,
       c.COLUMN_NAME AS cname, c.COLUMN_TYPE AS ctype, c.IS_NULLABLE AS nullable,
       c.COLUMN_COMMENT AS ccomment, t.TABLE_COMMENT AS tcomment,
       NULL AS kname, NULL AS rschema, NULL AS rtable, NULL AS rcol
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = DATABASE()
UNION ALL
SELECT CASE WHEN k.CONSTRAINT_NAME = 'PRIMARY' THEN 'p' ELSE 'f' END, k.TABLE_NAME, NULL,
       k.ORDINAL_POSITION, k.COLUMN_NAME, NULL, NULL, NULL, NULL,
       k.CONSTRAINT_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME,
       k.REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE k
WHERE k.TABLE_SCHEMA = DATABASE()
  AND (k.CONSTRAINT_NAME = 'PRIMARY' OR k.REFERENCED_TABLE_NAME IS NOT NULL)
ORDER BY 2, 1, 10, 4
"""

#: Global privileges that reach beyond reading one database (MariaDB splits SUPER up).
_ADMIN_PRIVILEGES = frozenset({"SUPER", "SHUTDOWN", "PROCESS", "RELOAD", "CONNECTION ADMIN",
                               "READ_ONLY ADMIN", "CREATE USER", "BINLOG ADMIN"})
# the grantee as information_schema spells it: 'user'@'host'
_PRIVILEGES = (
    "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = "
    "CONCAT(CHAR(39), SUBSTRING_INDEX(CURRENT_USER(), '@', 1), CHAR(39), '@', CHAR(39), "
    "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), CHAR(39))"
)


def _literal(text: str) -> str:
    """A string literal (backslashes too: MariaDB treats them as escapes by default)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


_ROW_ESTIMATES = """
SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
"""

_FINGERPRINT = """
SELECT DATABASE(),
  (SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', TABLE_NAME, COLUMN_NAME,
          ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_COMMENT))), 0))
     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()),
  (SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', TABLE_NAME, COLUMN_NAME,
          CONSTRAINT_NAME, ORDINAL_POSITION, REFERENCED_TABLE_NAME,
          REFERENCED_COLUMN_NAME))), 0))
     FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE()),
  (SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', TABLE_NAME, TABLE_TYPE,
          TABLE_COMMENT))), 0))
     FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE())
"""

#: Driver error codes of a failed connection, and what they mean.
_CONNECT_CODES = {1045: "auth", 1049: "unknown_database", 1044: "no_access",
                  2003: "unreachable", 2005: "unreachable", 2006: "unreachable",
                  2013: "unreachable"}


def _s(v: Any) -> Any:
    """MariaDB may hand information_schema text back as bytes."""
    return v.decode() if isinstance(v, bytes | bytearray) else v


def _pymysql_error(exc: BaseException) -> BaseException | None:
    orig = getattr(exc, "orig", None) or exc
    return orig if type(orig).__module__.startswith("pymysql") else None


#: sql_mode flags that change how the server reads strings, quoted names or the whole
#: grammar (ANSI, ORACLE, ... imply ANSI_QUOTES). Dropped for every run; the session reset
#: after it restores the server's own mode.
_LEXING_MODES = ("NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI", "ORACLE", "MSSQL", "DB2",
                 "POSTGRESQL", "MAXDB")


def _plain_sql_mode() -> str:
    expr = "CONCAT(',', @@SESSION.sql_mode, ',')"
    for mode in _LEXING_MODES:
        expr = f"REPLACE({expr}, ',{mode},', ',')"
    return f"SET SESSION sql_mode = TRIM(BOTH ',' FROM {expr})"


_PLAIN_SQL_MODE = _plain_sql_mode()

#: COM_RESET_CONNECTION (MySQL 5.7.3+, MariaDB 10.2.4+; PyMySQL names the byte COM_END).
_COM_RESET_CONNECTION = 0x1F


def _reset_session(my: Any) -> None:
    """End the run's transaction and everything else the statement left on the session.

    The server rolls back, releases `GET_LOCK` and `LOCK TABLES` locks, closes `HANDLER`s,
    drops temporary tables and resets session and user variables (the character set
    negotiated at connect stays). It also turns autocommit back on, so the driver's own
    mode is restored afterwards.
    """
    my._execute_command(_COM_RESET_CONNECTION, b"")
    my._read_ok_packet()
    my.autocommit(my.autocommit_mode)


def _abandon(cur: Any) -> None:
    """Forget an unbuffered result so closing the cursor does not drain the wire."""
    result = getattr(cur, "_result", None)
    if result is not None:
        result.unbuffered_active = False


def _kill(engine: Engine, thread_id: int) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"KILL QUERY {int(thread_id)}")
        cur.close()
    finally:
        raw.close()


@dataclass(frozen=True)
class MySQLDialect(Dialect):
    """MySQL/MariaDB: one read-only transaction and a server timeout per statement."""

    def connect_args(self, spec: ConnectionSpec) -> dict[str, Any]:
        args = super().connect_args(spec)
        args["charset"] = spec.options.get("charset", "utf8mb4")
        # PyMySQL never asks for multi-statements unless told through client_flag,
        # which is not a passable option; LOAD DATA LOCAL stays off too.
        args["local_infile"] = False
        return args

    def run(self, engine: Engine, spec: ConnectionSpec, stmt: str, *, max_rows: int,
            run: runs.Run, read_only: bool, as_query: bool) -> runs.Fetched:
        import pymysql
        from pymysql.cursors import SSCursor

        raw = runs.checkout(engine, spec)
        my: pymysql.Connection[Any] = raw.driver_connection
        discard = False  # a killed, timed-out or half-read connection is dropped, not reused
        cur = None
        try:
            mariadb = "mariadb" in (my.get_server_info() or "").lower()
            with my.cursor() as c:
                c.execute("SET SESSION TRANSACTION READ ONLY" if read_only
                          else "SET SESSION TRANSACTION READ WRITE")
                c.execute(_PLAIN_SQL_MODE)  # strings read as the parser read them
                if mariadb:
                    c.execute(f"SET SESSION max_statement_time = {run.timeout_s:.3f}")
                else:
                    c.execute("SET SESSION max_execution_time = "
                              f"{max(1, int(run.timeout_s * 1000))}")
                c.execute("START TRANSACTION READ ONLY" if read_only else "START TRANSACTION")
            thread_id = my.thread_id()
            cur = SSCursor(my)
            with run.interruptible(lambda: _kill(engine, thread_id)):
                try:
                    cur.execute(stmt)
                    fetched = runs.read_cursor(cur, max_rows, run)
                except BaseException:
                    discard = True
                    raise
            if fetched.truncated:
                discard = True  # unread rows are still on the wire: drop the connection
            else:
                cur.close()
                if not read_only:
                    my.commit()
                try:
                    _reset_session(my)  # also rolls a read-only run back
                except Exception:
                    discard = True  # no reset on this server: drop the session instead
            return fetched
        except pymysql.Error as exc:
            err = self.map_error(exc, run, engine, spec)
            if isinstance(err, QueryTimeout | QueryCancelled):
                discard = True
            else:  # an ordinary SQL error leaves the connection usable
                try:
                    _reset_session(my)
                    discard = False
                except Exception:
                    discard = True
            raise err from None
        finally:
            if discard:
                _abandon(cur)
                raw.invalidate()
            raw.close()

    def map_error(self, exc: BaseException, run: runs.Run, engine: Engine,
                  spec: ConnectionSpec) -> Exception:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        msg = scrub(str(exc.args[1]) if len(exc.args) > 1 else str(exc), [spec.password])
        if code in (1317, 1969, 3024) or run.token.cancelled or run.timed_out:
            if code == 1969 or code == 3024:
                return run.timeout_error()
            return run.stop_error()
        if code == 1792 or code == 1290:
            return SQLRefused(
                f"The database refused it: this connection is read-only ({msg}). Only "
                "queries can run here.")
        if code == 1146:
            m = re.search(r"Table '(?:[^'.]+\.)?([^']+)' doesn't exist", msg)
            return suggest.unknown_table(m.group(1) if m else msg, engine, spec)
        if code == 1054:
            m = re.search(r"Unknown column '([^']+)'", msg)
            return suggest.unknown_column(m.group(1) if m else "", msg, engine, spec)
        if code in (1044, 1142, 1143, 1227):
            return DatabaseError(f"Permission denied: {msg}. Ask the database owner for "
                                 "access.", reason="permission_denied")
        if code in (2003, 2006, 2013):
            return DatabaseError(f"The database connection failed: {msg}. Try again.")
        return DatabaseError(f"The database rejected the SQL: {msg}", reason="query_error")

    def fingerprint(self, engine: Engine, spec: ConnectionSpec) -> tuple[list[str], str | None]:
        row = runs.catalog_rows(engine, spec, _FINGERPRINT)[0]
        return [str(v) for v in row], None

    def risky_privileges(self, cursor: Any, spec: ConnectionSpec) -> list[str]:
        cursor.execute(_PRIVILEGES)
        have = {str(_s(r[0])).upper() for r in cursor.fetchall()}
        if have & _ADMIN_PRIVILEGES:
            return ["server_admin"]
        return ["server_files"] if "FILE" in have else []

    def readonly_role_sql(self, spec: ConnectionSpec, role: str, password: str) -> list[str]:
        """A user that can read this one database (tables and views) and nothing else."""
        user = f"{_literal(role)}@'%'"
        db = "`" + (spec.database or "").replace("`", "``") + "`"
        return [f"CREATE USER {user} IDENTIFIED BY {_literal(password)}",
                f"GRANT SELECT, SHOW VIEW ON {db}.* TO {user}"]

    def row_counts(self, engine: Engine, spec: ConnectionSpec,
                   tables: list[Table]) -> tuple[dict[str, int | None], bool]:
        """The storage engine's estimates (`TABLE_ROWS`; exact for MyISAM, rough for InnoDB)."""
        rows = runs.catalog_rows(engine, spec, _ROW_ESTIMATES)
        return {str(_s(name)): (None if n is None else int(n)) for name, n in rows}, False

    def catalog(self, engine: Engine, spec: ConnectionSpec) -> list[Table]:
        rows = runs.catalog_rows(engine, spec, _CATALOG)
        tables: dict[str, Table] = {}
        pks: dict[str, set[str]] = {}
        fks: dict[tuple[str, str], ForeignKey] = {}

        def table(name: str, kind: str = "table") -> Table:
            t = tables.get(name)
            if t is None:
                t = tables[name] = Table(name=name, schema=None, columns=[], kind=kind)
            return t

        for (kind, tname, ttype, _pos, cname, ctype, nullable, ccomment, tcomment, kname,
             rschema, rtable, rcol) in rows:
            kind, tname = _s(kind), _s(tname)
            if kind == "c":
                is_view = _s(ttype) == "VIEW"
                t = table(tname, "view" if is_view else "table")
                t.columns.append(Column(_s(cname), _s(ctype), _s(nullable) == "YES", False,
                                        _s(ccomment) or None))
                if tcomment and not is_view:
                    t.comment = _s(tcomment)
            elif kind == "p":
                pks.setdefault(tname, set()).add(_s(cname))
            else:
                fk = fks.get((tname, _s(kname)))
                if fk is None:
                    fk = fks[(tname, _s(kname))] = ForeignKey([], _s(rtable), [], _s(rschema),
                                                              _s(kname))
                    table(tname).foreign_keys.append(fk)
                fk.columns.append(_s(cname))
                fk.ref_columns.append(_s(rcol))
        current = engine.url.database
        for tname, t in tables.items():
            for c in t.columns:
                c.primary_key = c.name in pks.get(tname, ())
            for fk in t.foreign_keys:
                if fk.ref_schema == current:
                    fk.ref_schema = None  # same database: render unqualified
        return list(tables.values())

    def server_version(self, cursor: Any) -> str:
        cursor.execute("SELECT VERSION()")
        v = str(cursor.fetchone()[0])
        return ("MariaDB " if "mariadb" in v.lower() else "MySQL ") + v

    def driver_message(self, exc: BaseException) -> str:
        orig = _pymysql_error(exc)
        if orig is not None and len(orig.args) >= 2:
            return str(orig.args[1])
        return super().driver_message(exc)

    def connect_failure(self, exc: BaseException) -> str | None:
        orig = _pymysql_error(exc)
        if orig is not None and orig.args and isinstance(orig.args[0], int):
            return _CONNECT_CODES.get(orig.args[0])
        return None


register_dialect(MySQLDialect(
    name="mysql", label="MySQL/MariaDB", drivername="mysql+pymysql",
    sqlglot_dialect="mysql", default_port=3306, aliases=("mariadb",),
    options=("charset", "ssl_ca", "ssl_cert", "ssl_key", "ssl_verify_cert"),
))
