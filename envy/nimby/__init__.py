"""NIMBY ("not in my back yard"): the agent yields the machine to the person sitting at it.

``settings.py`` holds the keys and their validators, ``decide.py`` turns one
reading of the machine (envy/platform/idle.py) into what the renders should
do, and ``watcher.py`` is the thread that polls and acts through a narrow
``RenderControl`` interface.
"""
