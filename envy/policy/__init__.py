"""The lab's lockdown policy: who may use the farm, and how many machines each user may use when.

* ``rules.py``   the policy file: format, validation, the limit at a given time in the policy's zone
* ``seats.py``   counting machines: seats claimed atomically on the share, freed when their agent is gone
* ``enforce.py`` the agent's side: refuse a blacklisted user, stand down and resume within the limit
* ``report.py``  ``envy-io policy``: what applies to a user now, and why
"""
