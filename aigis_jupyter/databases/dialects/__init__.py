"""One module per kind of database server; each registers its `Dialect` when imported.

`engines.get_dialect` imports the built-in ones by name (`engines.BUILTIN_DIALECTS`) the
first time the registry is used, so nothing imports them statically: they may import
`engines`, `runs`, `catalog` and `suggest` without an import cycle.
"""
