"""The `%aigis` subcommands that teach a connection: verified queries and notes.

A mixin of `magics.AigisMagics`, like `commands.Subcommands`: words in, one service call,
a display out. Files of verified queries are JSON Lines (`{"question": ..., "sql": ...}`
per line) or YAML (a list of such mappings); the core checks every statement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInput

if TYPE_CHECKING:
    from .service.contract import ServiceAPI

TEACH_HELP = """\
%aigis verify                   save this thread's last question and its SQL as a verified
                                query of the connection (it guides later answers)
%aigis examples [--conn NAME]   the connection's verified queries
%aigis examples add FILE | add "QUESTION" "SQL" [--conn NAME]
                                teach from a JSON Lines or YAML file, or one pair
%aigis examples export FILE | remove ID [--conn NAME]
%aigis notes [--conn NAME] [--clear]
%%aigis notes [--conn NAME]
<text>                          business terms and rules the assistant should follow
"""


def read_examples(path: str | Path) -> list[dict[str, Any]]:
    """Verified queries from a JSON Lines, JSON or YAML file; BadInput names the line."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"Cannot read {str(p)!r}: {exc.strerror or exc}.") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise BadInput("Reading YAML needs PyYAML (pip install pyyaml); or use JSON "
                           "Lines.") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BadInput(f"{p.name} is not valid YAML: {exc}") from None
        items = data.get("examples") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise BadInput(f"{p.name} must hold a list of {{question, sql}} mappings.")
        return items
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError as exc:
            raise BadInput(f"{p.name} is not valid JSON: {exc}") from None
        return list(items)
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            raise BadInput(f"{p.name}, line {n}: not JSON ({exc}).") from None
    return out


class TeachCommands:
    """`%aigis verify | examples | notes`; mixed into `AigisMagics`."""

    scope: ServiceAPI
    thread_id: Any
    _connection_ref: Any

    def _verify(self, rest: list[str]) -> Any:
        ex = self.scope.verify_turn(self.thread_id())
        print(f"Saved as a verified query: {ex['question']!r}. Similar questions on this "
              "connection will follow its SQL.")
        return None

    def _teach_conn(self, rest: list[str]) -> tuple[str, list[str]]:
        """`--conn NAME` out of the words, else the thread's connection."""
        words = list(rest)
        for flag in ("--conn", "-c"):
            if flag in words:
                i = words.index(flag)
                if i + 1 >= len(words):
                    raise BadInput(f"{flag} needs a connection name.")
                name = words[i + 1]
                del words[i:i + 2]
                return name, words
        return self._connection_ref(), words

    def _examples(self, rest: list[str]) -> Any:
        import pandas as pd

        conn, words = self._teach_conn(rest)
        sub = words[0] if words else "list"
        if sub == "list":
            rows = self.scope.list_examples(conn)
            return pd.DataFrame([{k: r[k] for k in ("question", "sql", "id")} for r in rows],
                                columns=["question", "sql", "id"])
        if sub == "add" and len(words) == 2:
            added = self.scope.add_examples(conn, read_examples(words[1]))
            print(f"Taught {len(added)} verified quer{'y' if len(added) == 1 else 'ies'}.")
            return None
        if sub == "add" and len(words) == 3:
            self.scope.add_examples(conn, [{"question": words[1], "sql": words[2]}])
            print("Taught 1 verified query.")
            return None
        if sub == "export" and len(words) == 2:
            rows = self.scope.list_examples(conn)
            path = Path(words[1]).expanduser()
            path.write_text("".join(json.dumps({"question": r["question"], "sql": r["sql"]},
                                               ensure_ascii=False) + "\n" for r in rows),
                            encoding="utf-8")
            print(f"Wrote {len(rows)} verified queries to {path}.")
            return None
        if sub in ("remove", "rm", "delete") and len(words) == 2:
            self.scope.delete_example(conn, words[1])
            print(f"Removed verified query {words[1]}.")
            return None
        raise BadInput("Usage: %aigis examples [list] | add FILE | add \"QUESTION\" \"SQL\" | "
                       "export FILE | remove ID  [--conn NAME]")

    def _notes(self, rest: list[str], body: str | None = None) -> Any:
        conn, words = self._teach_conn(rest)
        if body is not None or words == ["--clear"]:
            text = (body or "").strip() or None
            self.scope.update_connection(conn, {"notes": text})
            print("Notes cleared." if text is None else
                  f"Saved the notes ({len(text)} characters); they guide every question on "
                  "this connection.")
            return None
        if words:
            raise BadInput("Usage: %aigis notes [--conn NAME] [--clear], or a %%aigis notes "
                           "cell whose body is the notes.")
        notes = self.scope.get_connection(conn).get("notes")
        print(notes or "No notes yet: write them in a %%aigis notes cell.")
        return None
