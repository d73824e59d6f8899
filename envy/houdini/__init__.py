"""Houdini cache jobs through hython: a JSON job says which HIP file, which node's button, which parameters.

* ``schema.py``: the cache job (``job.json``), its validation, ``$NVJ`` wedges, duplicates;
* ``versions.py``: the next free version folder (``v001``, ``v002``, ...);
* ``submit_cache.py``: one task file per wedge, written before the job file;
* ``cache_tasks.py``: how an agent runs a task (the ``hython`` profile, the runner's argv);
* ``runner.py``: the script hython runs; Houdini's own Python only, no Envy imports;
* ``api.py``: what an HDA or shelf tool calls; ``cli_cache.py``: ``envy-io cache job.json``.

See docs/usd-and-houdini.md.
"""
