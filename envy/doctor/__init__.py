"""``envy doctor SHARE``: is this folder on this drive fit to be a farm?

One small module per check (mount, permissions, renames, case, clock,
visibility, space, latency); ``runner`` runs them in order and ``report``
prints them. Every check works inside one probe folder with a temp name that
agents ignore, and the runner removes it whatever happens.
"""
