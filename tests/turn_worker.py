"""A second process asking in a thread of a shared store (run by tests/test_turns.py).

usage: turn_worker.py STORE_URL DATA_DIR USER THREAD_ID SQL [LEASE_S]
Prints each event of the turn as one JSON line, then `{"type": "_done"}`; a refusal before
the turn starts prints `{"type": "_refused", "reason": ...}`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_agent_support import ScriptedChatModel

from aigis_jupyter.errors import AigisError
from aigis_jupyter.models import ModelInfo
from aigis_jupyter.service.core import AigisService
from aigis_jupyter.settings import Settings


def say(event: dict) -> None:
    print(json.dumps(event, default=str), flush=True)


async def main() -> None:
    store_url, data_dir, user, thread_id, sql = sys.argv[1:6]
    lease = float(sys.argv[6]) if len(sys.argv) > 6 else 15.0
    settings = Settings(data_dir=Path(data_dir), database_url=store_url, turn_lease_s=lease,
                        master_keys=["turn tests"], statement_timeout_s=60.0)
    svc = AigisService(settings)
    model = ScriptedChatModel(messages=iter([sql, "done"]))
    svc.models.register(ModelInfo(name="scripted", provider="fake", supports_tools=False),
                        lambda: model)
    scope = svc.user(user)
    try:
        async for event in scope.chat(thread_id, "count a lot", model="scripted"):
            say(event)
    except AigisError as exc:
        say({"type": "_refused", "reason": exc.reason, "message": exc.message})
    say({"type": "_done"})
    svc.close()


if __name__ == "__main__":
    asyncio.run(main())
