"""Not every message is a query: requests to change data, greetings and "what can you do?".

Asked of a model, "delete all customers" becomes `SELECT * FROM customers` and "hello"
becomes a query on whatever table the model likes, each answered with a row. Read from the
words, a change request on a read-only connection gets a plain refusal with nothing run,
and a greeting gets a short description of the connection's tables and questions to start
with. Anything else is a question for the database.
"""

from __future__ import annotations

import re
from typing import Literal

Intent = Literal["data", "change", "chat"]

_POLITE = r"(?:(?:please|pls|kindly|now|ok|okay|then|also|and)\s*,?\s+)*"
_ASK = r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?|i\s+(?:want|need)\s+(?:you\s+)?to\s+|" \
       r"let'?s\s+|go\s+ahead\s+and\s+)?"
_CHANGE_VERBS = (r"delete|remove|drop|truncate|insert|update|modify|change|set|rename|alter|"
                 r"create|add|wipe|erase|purge|clear|overwrite|replace|merge|upsert|grant|"
                 r"revoke|reset|edit|fix|correct|increase|decrease|raise|lower|mark|assign|"
                 r"move|archive|restore|import|load")
#: A change verb, not the noun ("set of customers", "change in revenue", "add up").
_CHANGE = re.compile(rf"(?i)^\s*{_POLITE}{_ASK}(?:{_CHANGE_VERBS})(?=\s+[\w'\"`])"
                     r"(?!\s*(?:up|by|of|in|over|per|between|from|vs\.?|versus)\b)")
#: Statements a user may paste: the guard refuses them anyway, this says why first.
_CHANGE_SQL = re.compile(r"(?i)^\s*(insert\s+into|update\s+\w+\s+set|delete\s+from|drop\s+"
                         r"(?:table|view|database|schema)|truncate|alter\s+table|create\s+"
                         r"(?:table|view|index))\b")
_GREETING = re.compile(
    r"(?i)^\s*(hi|hello|hey|hiya|howdy|yo|good\s+(morning|afternoon|evening|day)|greetings|"
    r"thanks?(\s+you)?|thank\s+you|thx|cheers|ok(ay)?|cool|great|nice|bye|goodbye)"
    r"[\s!.,?]*(there|aigis|again|so\s+much|a\s+lot)?[\s!.,?]*$")
_CAPABILITIES = re.compile(
    r"(?i)^\s*(what\s+can\s+you\s+do|what\s+can\s+you\s+help(\s+me)?\s+with|how\s+can\s+"
    r"you\s+help(\s+me)?|what\s+do\s+you\s+do|who\s+are\s+you|what\s+are\s+you|help|"
    r"what\s+is\s+this|how\s+does\s+(this|it)\s+work|what\s+(should|can)\s+i\s+ask(\s+you)?|"
    r"what\s+questions\s+can\s+i\s+ask(\s+you)?)"
    r"(\s+(for\s+me|here|about\s+(this|the|my)\s+(data(base)?|connection)|with\s+(this|the|my)"
    r"\s+(data(base)?|connection)))?[\s?!.]*$")


def intent(message: str) -> Intent:
    """What the message asks for: data (a query), a change to the data, or conversation."""
    text = (message or "").strip()
    if _GREETING.match(text) or _CAPABILITIES.match(text):
        return "chat"
    if _CHANGE_SQL.match(text) or _CHANGE.match(text):
        return "change"
    return "data"


def read_only_answer() -> str:
    return ("This connection is read-only: I can look things up in its data, but I cannot "
            "change it, so nothing was run. Ask me a question about the data instead, or "
            "ask its administrator to make the change.")


def chat_answer(tables: list[str], *, greeting: bool) -> str:
    """A short description of what can be asked, from the connection's table names."""
    shown = ", ".join(tables[:10]) + (f" and {len(tables) - 10} more" if len(tables) > 10
                                      else "")
    lead = "Hello! " if greeting else ""
    if not tables:
        return (f"{lead}I answer questions about your database in plain language, but this "
                "connection shows no tables yet.")
    return (f"{lead}I answer questions about this database in plain language: I write the "
            f"SQL, run it read-only and explain the result. Its tables are {shown}. Try one "
            "of the questions below.")


def is_greeting(message: str) -> bool:
    return bool(_GREETING.match((message or "").strip()))
