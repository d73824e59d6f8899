"""USD renders through husk: check a folder of per-frame USD files, submit husk tasks, plan them.

* ``check.py``: every file has the ``/rendersettings`` prim and a frame (read
  with usd-core when installed, ``.usda`` as text otherwise);
* ``submit_usd.py``: one husk task file per frame (and per tile);
* ``husk_tasks.py``: how an agent runs one husk task (argv, output, progress);
* ``cli_submit.py``: the ``envy-io submit DIR --delegate X --tiles 3x3`` command.

See docs/usd-and-houdini.md.
"""
