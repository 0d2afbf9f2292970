"""The Jupyter server extension: the REST + SSE API of the product under `{base_url}aigis/`.

jupyter-server finds it through `aigis_jupyter._jupyter_server_extension_points`. Importing
it is cheap; the service, SQLAlchemy and LangGraph load on the first request, or in a
background warm-up after the start.
"""
