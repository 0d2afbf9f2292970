"""Input checks shared by every operation: a bad field is refused with what to change."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from ..errors import BadInput

CONNECTION_FIELDS = ("name", "db_type", "host", "port", "database", "username", "password",
                     "options", "allow_write", "notes")
#: Characters of a connection's notes: they enter every SQL prompt on that connection.
NOTES_MAX = 4_000
#: Characters of a verified query's SQL (a question is bounded by QUESTION_MAX).
EXAMPLE_SQL_MAX = 20_000
#: Verified queries one request may bring (a file imported at once).
EXAMPLES_PER_REQUEST = 1_000
MESSAGE_ROLES = ("user", "assistant", "tool", "system")
NAME_MAX = 100
#: A question longer than this is refused before anything is stored or sent to a model: no
#: model's context holds more, and a pasted dump belongs in a table the question names.
QUESTION_MAX = 20_000
_NAME_RE = re.compile(rf"^[^\x00-\x1f\x7f]{{1,{NAME_MAX}}}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


def opt_str(data: Mapping[str, Any], key: str, *, max_len: int = 255) -> str | None:
    """An optional text field, stripped; empty becomes None."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput(f"'{key}' must be text, got {type(value).__name__}.")
    if "\x00" in value:  # no database or file name holds one, and stores refuse it
        raise BadInput(f"'{key}' contains a NUL character.")
    value = value.strip()
    if len(value) > max_len:
        raise BadInput(f"'{key}' is too long (at most {max_len} characters).")
    return value or None


def question(text: Any) -> str:
    """A chat question: text, not empty, bounded."""
    if not isinstance(text, str) or not text.strip():
        raise BadInput("Ask a question: the message is empty.")
    if len(text) > QUESTION_MAX:
        raise BadInput(f"The question is {len(text):,} characters long; at most "
                       f"{QUESTION_MAX:,} are accepted. Ask about the data in a few "
                       "sentences; put large inputs in a table of the connection instead.")
    return text


def email(value: str | None) -> str | None:
    if value and not _EMAIL_RE.match(value):
        raise BadInput(f"{value!r} does not look like an email address.")
    return value


def username(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise BadInput("A user name (1-255 characters) is required.")
    return value.strip()


def _port(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    try:
        port = int(raw)
        if isinstance(raw, bool) or str(port) != str(raw).strip():
            raise ValueError
    except (TypeError, ValueError):
        raise BadInput(f"'port' must be a whole number, got {raw!r}.") from None
    if not 1 <= port <= 65535:
        raise BadInput(f"'port' must be between 1 and 65535, got {port}.")
    return port


def _options(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise BadInput("'options' must be an object of driver options, e.g. {\"sslmode\": "
                       "\"require\"}.")
    options: dict[str, str] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not k or isinstance(v, (dict, list, tuple)) or v is None:
            raise BadInput(f"Connection option {k!r} must map a name to a plain value.")
        options[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return options


def connection(data: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise connection fields; BadInput says exactly which one is wrong and why."""
    from ..databases.engines import ConnectionSpec, get_dialect

    unknown = sorted(set(data) - set(CONNECTION_FIELDS))
    if unknown:
        raise BadInput(f"Unknown connection field(s): {', '.join(unknown)}. "
                       f"Known fields: {', '.join(CONNECTION_FIELDS)}.")
    name = opt_str(data, "name", max_len=NAME_MAX)
    if not name:
        raise BadInput("A connection needs a 'name' (how you will refer to it, e.g. 'sales').")
    if not _NAME_RE.match(name):
        raise BadInput(f"The connection name must be 1-{NAME_MAX} printable characters.")
    db_type = opt_str(data, "db_type", max_len=32)
    if not db_type:
        raise BadInput("A connection needs a 'db_type' (postgres, mysql or sqlite).")
    dialect = get_dialect(db_type.lower())  # BadInput listing the known types
    host = opt_str(data, "host", max_len=1024)
    port = _port(data.get("port"))
    database = opt_str(data, "database")
    user = opt_str(data, "username")
    password = data.get("password")
    if password is not None and not isinstance(password, str):
        raise BadInput("'password' must be text.")
    allow_write = data.get("allow_write", False)
    if allow_write is None:
        allow_write = False
    if not isinstance(allow_write, bool):
        raise BadInput("'allow_write' must be true or false.")
    options = _options(data.get("options") or {})
    notes = opt_str(data, "notes", max_len=NOTES_MAX)

    db_type = dialect.name  # aliases (postgresql, mariadb, sqlite3) become the registry key
    if dialect.file_based:
        if not host:
            raise BadInput(f"A {db_type} connection needs 'host' set to the database file's "
                           "path.")
        host = os.path.abspath(os.path.expanduser(host))
        port = database = user = None
        password = None
    else:
        if not host:
            raise BadInput(f"A {db_type} connection needs a 'host' (server name or address).")
        if any(ch.isspace() for ch in host) or "/" in host:
            raise BadInput(f"'host' must be a server name or address, got {host!r}.")
        database = database or dialect.default_database
        if not database:
            raise BadInput(f"A {db_type} connection needs a 'database' (the database to open "
                           "on that server).")
        if port is None:
            port = dialect.default_port
    dialect.check_options(ConnectionSpec(id="", db_type=db_type, options=options))
    return {"name": name, "db_type": db_type, "host": host, "port": port, "database": database,
            "username": user, "password": password, "options": options,
            "allow_write": allow_write, "notes": notes, "file_based": bool(dialect.file_based)}


def example(data: Any) -> dict[str, str]:
    """A verified query's fields: a question and one SQL statement, both text."""
    if not isinstance(data, Mapping):
        raise BadInput("A verified query is an object with 'question' and 'sql'.")
    unknown = sorted(set(data) - {"question", "sql", "id"})
    if unknown:
        raise BadInput(f"Unknown verified-query field(s): {', '.join(unknown)}. "
                       "Known fields: question, sql.")
    q = opt_str(data, "question", max_len=QUESTION_MAX)
    sql = opt_str(data, "sql", max_len=EXAMPLE_SQL_MAX)
    if not q or not sql:
        raise BadInput("A verified query needs both a 'question' and its 'sql'.")
    return {"question": q, "sql": sql}
