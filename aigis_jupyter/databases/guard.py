"""Layer 1 of the SQL guard: parse the statement (sqlglot, in the connection's dialect).

The statement is read exactly as the server would read it: comments are removed using
the dialect's own tokenizer and the *comment-free text* is what gets checked and what
runs, so nothing hidden in a comment (MySQL's `/*! ... */`, `--x` without a space) can
differ between what was checked and what executes. Optimizer hints (`/*+ ... */`) go too:
they can override the server's statement timeout. Unicode spaces outside quotes (U+00A0,
U+3000, ...) become ASCII spaces: the tokenizer reads them as separators, every server as
part of a name (`interval<U+00A0>$a$` is one identifier to PostgreSQL, an interval and a
dollar-quoted string to the tokenizer, which would hide what follows). Then: exactly one
statement, a read query (SELECT, set operations, VALUES, WITH ... SELECT), no
data-modifying CTE, no `SELECT ... INTO`, no row locks, no function from a deny list (file
access, sleeping, session or server control, SQL run from a string) and, on MySQL, no
table of another database than the connection's (`information_schema` excepted). Anything
sqlglot cannot parse is refused: what cannot be understood cannot be vouched for. The
database layer (execute.py) holds even if this layer is switched off or fooled.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from ..errors import BadInput, SQLRefused

__all__ = ["DENIED_FUNCTIONS", "DENIED_TABLES", "check_sql", "is_read_query", "strip_comments"]

MAX_SQL_CHARS = 200_000

#: Functions refused anywhere in a statement (any dialect): file and large-object access,
#: sleeping, server/session control, locks, sequences and functions running SQL strings.
DENIED_FUNCTIONS = frozenset({
    # PostgreSQL
    "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_read_file", "pg_read_binary_file",
    "pg_stat_file", "pg_logdir_ls", "set_config", "pg_terminate_backend",
    "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote", "pg_switch_wal",
    "pg_start_backup", "pg_stop_backup", "pg_backup_start", "pg_backup_stop", "pg_notify",
    "pg_logical_emit_message", "pg_import_system_collations", "nextval", "setval",
    "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
    "cursor_to_xmlschema", "lowrite", "loread", "ts_stat", "ts_rewrite", "crosstab",
    "connectby", "pg_truncate_visibility_map", "pg_log_backend_memory_contexts",
    # MySQL / MariaDB
    "sleep", "benchmark", "load_file", "get_lock", "release_lock", "release_all_locks",
    "master_pos_wait", "source_pos_wait", "master_gtid_wait", "sys_exec", "sys_eval",
    "wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids",
    # SQLite
    "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "fsdir", "zipfile",
    "sqlite_dbpage",
})
_DENIED_PREFIXES = (
    "dblink", "lo_", "pg_read_", "pg_ls_", "pg_file_", "pg_advisory", "pg_try_advisory",
    "pg_create_", "pg_drop_", "pg_replication_", "pg_sleep", "pg_stat_reset",
    "pg_stat_statements_reset", "pg_logical_", "pg_copy_", "pg_wal_replay_",
    "pg_xlog_replay_", "postgres_fdw", "heap_force_",
)
#: Catalog tables holding password hashes or secrets.
DENIED_TABLES = frozenset({
    "pg_authid", "pg_shadow", "pg_user_mapping", "pg_user_mappings", "user", "global_priv",
})
_DENIED_TABLE_SCHEMAS = {"user": "mysql", "global_priv": "mysql"}
#: MySQL databases that are never the connection's own data; `information_schema` stays
#: readable (it only shows what the account may see anyway).
_MYSQL_SYSTEM_DATABASES = frozenset({"mysql", "performance_schema", "sys"})
_MYSQL_OPEN_DATABASES = frozenset({"information_schema"})
#: Whitespace every server reads as whitespace; any other space outside quotes becomes " ".
_ASCII_SPACE = frozenset(" \t\n\r")


class _QuietCommandFallback(logging.Filter):
    """sqlglot warns when it falls back to an opaque Command; we refuse those anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_QuietCommandFallback())


@cache
def _exp() -> Any:
    from sqlglot import exp

    return exp


def _sqlglot_dialect(dialect: str) -> str:
    from .engines import get_dialect

    try:
        return get_dialect(dialect).sqlglot_dialect
    except BadInput:
        return dialect  # already a sqlglot dialect name (duckdb, tsql, ...)


def _tokenize(sql: str, dialect: str) -> list[Any]:
    import sqlglot
    from sqlglot.errors import TokenError

    try:
        return list(sqlglot.Dialect.get_or_raise(dialect).tokenize(sql))
    except TokenError as exc:
        raise SQLRefused(
            f"The statement could not be read as {dialect} SQL ({_first_line(exc)}); check "
            "for an unterminated string, quoted name or comment.") from None
    except ValueError as exc:  # unknown dialect name
        raise BadInput(str(exc)) from None


@cache
def _quoted_tokens() -> frozenset[Any]:
    """Token types whose text is quoted data (strings, quoted names): copied verbatim."""
    from sqlglot.tokens import TokenType

    names = ("STRING", "IDENTIFIER", "BIT_STRING", "HEX_STRING", "BYTE_STRING",
             "NATIONAL_STRING", "NATIONAL_RAW_STRING", "RAW_STRING", "HEREDOC_STRING",
             "UNICODE_STRING")
    return frozenset(getattr(TokenType, n) for n in names if hasattr(TokenType, n))


def _ascii_spaces(text: str) -> str:
    """Unicode (and vertical-tab/form-feed) spaces as plain spaces: sqlglot separates tokens
    at them, the servers read them as part of a name."""
    return "".join(" " if c.isspace() and c not in _ASCII_SPACE else c for c in text)


def _statements(sql: str, dialect: str) -> list[str]:
    """Split into statements, each rebuilt from its tokens' own text with comments removed.

    The gaps between tokens keep their (ASCII) whitespace; a gap holding a comment becomes
    one space, and so does an optimizer hint. String and quoted-name tokens are copied
    verbatim from the input; in any other token (a multi-word keyword such as `ORDER BY`)
    a Unicode space becomes an ASCII one.
    """
    from sqlglot.tokens import TokenType

    tokens = _tokenize(sql, dialect)
    quoted = _quoted_tokens()
    hint = getattr(TokenType, "HINT", None)
    out: list[str] = []
    parts: list[str] = []
    prev_end: int | None = None
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            if parts:
                out.append("".join(parts).strip())
            parts, prev_end = [], tok.end + 1
            continue
        if tok.token_type == hint:  # read as a comment: never sent
            continue
        if prev_end is not None and parts:
            gap = sql[prev_end:tok.start]
            parts.append(_ascii_spaces(gap) if gap.isspace() or gap == "" else " ")
        text = sql[tok.start:tok.end + 1]
        parts.append(text if tok.token_type in quoted else _ascii_spaces(text))
        prev_end = tok.end + 1
    if parts:
        out.append("".join(parts).strip())
    return [s for s in out if s]


def strip_comments(sql: str, dialect: str) -> str:
    """The statement(s) with comments removed, as the dialect's tokenizer sees them."""
    return ";\n".join(_statements(sql, _sqlglot_dialect(dialect)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _parse(stmt: str, dialect: str) -> Any:
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    try:
        trees = [t for t in sqlglot.parse(stmt, read=dialect) if t is not None]
    except (ParseError, TokenError) as exc:
        raise SQLRefused(
            f"aigis could not parse this statement as {dialect} SQL, so it will not run it "
            f"({_first_line(exc)}). Rewrite it as a single plain SELECT query.") from None
    if len(trees) != 1:
        raise SQLRefused("Only one SQL statement can run at a time; send a single SELECT.")
    return trees[0]


def _read_root(tree: Any) -> bool:
    exp = _exp()
    while isinstance(tree, exp.Subquery):
        tree = tree.this
    return isinstance(tree, exp.Select | exp.SetOperation | exp.Values)


def _kind(tree: Any) -> str:
    exp = _exp()
    if isinstance(tree, exp.Command):
        word = str(tree.this or "").split()
        return (word[0] if word else "unknown").upper()
    return tree.key.upper()


def _func_name(node: Any) -> str:
    exp = _exp()
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower()


def _function_denied(name: str) -> bool:
    return name in DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES)


def _write_nodes() -> tuple[type, ...]:
    exp = _exp()
    names = ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable",
             "Command", "Copy", "Set", "Use", "Pragma", "Transaction", "Commit", "Rollback",
             "LoadData", "Grant", "Revoke", "Attach", "Detach", "Analyze", "Kill", "Execute",
             "Declare", "Comment", "Cache", "Uncache", "Refresh")
    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


# Statement roots a write-enabled connection may run (anything else is still refused).
_WRITE_ROOTS = ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter",
                "TruncateTable", "Comment", "Analyze")


def _other_database(qualifier: str, dialect: str, database: str | None) -> bool:
    """True when a MySQL name is qualified with a database that is not the connection's."""
    if dialect != "mysql" or not qualifier or qualifier.lower() in _MYSQL_OPEN_DATABASES:
        return False
    if database:
        return qualifier != database  # names are case-sensitive on most servers
    return qualifier.lower() in _MYSQL_SYSTEM_DATABASES


def _refuse_other_database(qualifier: str, what: str, database: str | None) -> None:
    own = f"`{database}`" if database else "its own database"
    raise SQLRefused(
        f"The query reads {what} of the database `{qualifier}`, but this connection may only "
        f"read {own} (and information_schema). Use the table names without a database "
        "prefix, or add a connection for the other database.")


def _check_tree(tree: Any, dialect: str, allow_write: bool, database: str | None) -> None:
    exp = _exp()
    if allow_write:
        if not (_read_root(tree) or type(tree).__name__ in _WRITE_ROOTS):
            raise SQLRefused(
                f"{_kind(tree)} is not allowed, even on a write-enabled connection: only "
                "queries, INSERT/UPDATE/DELETE/MERGE and DDL are.")
    elif not _read_root(tree):
        raise SQLRefused(
            f"Only read queries (SELECT, WITH ... SELECT, UNION, VALUES) may run on this "
            f"connection, not {_kind(tree)}. Ask an admin to enable write access on the "
            "connection if a change is really intended.")

    writes = _write_nodes()
    for node in tree.walk():
        if isinstance(node, exp.Into) and not allow_write:
            raise SQLRefused(
                "SELECT ... INTO creates a table or writes a file; remove the INTO clause.")
        if isinstance(node, exp.Lock) and not allow_write:
            raise SQLRefused(
                "Row locks (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE) are not allowed in "
                "a read-only query; remove the locking clause.")
        # a part of WITH that changes rows is "data-modifying"; any other non-query (a
        # command such as REINDEX, whichever node sqlglot reads it as) is "not a query"
        if (isinstance(node, exp.CTE) and not _read_root(node.this)
                and not isinstance(node.this, exp.Insert | exp.Update | exp.Delete | exp.Merge)):
            raise SQLRefused(
                f"The WITH clause names {node.alias or 'a part'} as something that is not a "
                "query; each part of a WITH clause must be a SELECT.")
        if node is not tree and isinstance(node, writes):
            if isinstance(node, _exp().Create) and allow_write:
                continue
            if not allow_write or not isinstance(node, exp.Insert | exp.Update | exp.Delete):
                inside_cte = node.find_ancestor(exp.CTE) is not None
                what = "a data-modifying CTE" if inside_cte else f"a nested {_kind(node)}"
                raise SQLRefused(
                    f"The query contains {what}; only plain reads are allowed. Rewrite it "
                    "as a SELECT.")
        if isinstance(node, exp.Func):
            name = _func_name(node)
            if _function_denied(name):
                raise SQLRefused(
                    f"The function {name}() is not allowed (it can read files, sleep, or "
                    "change the server or session). Rewrite the query without it.")
            parent = node.parent
            if (isinstance(parent, exp.Dot) and parent.expression is node
                    and isinstance(parent.this, exp.Identifier)
                    and _other_database(parent.this.name, dialect, database)):
                _refuse_other_database(parent.this.name, f"the function {name}()", database)
        if isinstance(node, exp.Table):
            name = str(node.name).lower()
            schema = str(node.db).lower()
            if name in DENIED_TABLES and _DENIED_TABLE_SCHEMAS.get(name, schema) == schema:
                raise SQLRefused(
                    f"The table {node.sql(dialect=dialect)} holds credentials and cannot be "
                    "queried.")
            if dialect == "mysql" and node.catalog:  # not MySQL syntax: never vouched for
                _refuse_other_database(str(node.catalog), "a table", database)
            if _other_database(str(node.db), dialect, database):
                _refuse_other_database(str(node.db), f"the table {node.name}", database)


def check_sql(sql: str, dialect: str, *, allow_write: bool = False,
              database: str | None = None) -> str:
    """Return the single, comment-free statement to run, or raise SQLRefused saying why.

    `dialect` is a connection type (postgres, mysql, sqlite) or any sqlglot dialect name.
    With `allow_write` DML and DDL pass too, but still one statement and no denied
    functions. `database` is the connection's own database: on MySQL a table or function
    of any other one is refused (without it, only the system databases are).
    """
    if not isinstance(sql, str) or not sql.strip():
        raise SQLRefused("The SQL statement is empty; write a SELECT query.")
    if len(sql) > MAX_SQL_CHARS:
        raise SQLRefused(f"The SQL statement is longer than {MAX_SQL_CHARS:,} characters.")
    if "\x00" in sql:
        raise SQLRefused("The SQL statement contains a NUL character.")
    d = _sqlglot_dialect(dialect)
    stmts = _statements(sql, d)
    if not stmts:
        raise SQLRefused("The SQL holds only comments; write a SELECT query.")
    if len(stmts) > 1:
        raise SQLRefused(
            f"Only one SQL statement can run at a time; this has {len(stmts)}. Send a single "
            "SELECT.")
    stmt = stmts[0]
    _check_tree(_parse(stmt, d), d, allow_write, database)
    return stmt


def is_read_query(sql: str, dialect: str, *, database: str | None = None) -> bool:
    """True when the text is one statement that parses as a read query (no refusal)."""
    try:
        d = _sqlglot_dialect(dialect)
        stmts = _statements(sql, d)
        if len(stmts) != 1:
            return False
        tree = _parse(stmts[0], d)
        _check_tree(tree, d, allow_write=False, database=database)
        return True
    except (SQLRefused, BadInput):
        return False
