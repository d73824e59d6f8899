"""Telling people their job finished (issue 11 §6): webhook and e-mail from the agent, desktop from Envy IO.

* ``addresses.py``: what a webhook URL, an e-mail address and a mail server may look like;
* ``events.py``: the event marker on the share (one per finish, decided by an exclusive create);
* ``settings.py``: the submitter's notify settings, read from their folder on the share;
* ``channels.py``: one webhook POST, one e-mail (bounded, with timeouts);
* ``outbox.py``: the agent's delivery thread (retries with backoff, logged, never blocks rendering).
"""
