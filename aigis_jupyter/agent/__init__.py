"""The agent: a LangGraph pipeline that turns a question into SQL, a table, a chart and words.

Nothing heavy is imported here; use `aigis_jupyter.agent.runner.AgentRunner`.
"""

from __future__ import annotations
