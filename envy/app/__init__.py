"""The runnable copy of Envy on the share, and upgrading it without visiting each machine.

::

    <share>/app/
      envy.pyz                  the launcher: stdlib only, never changes in use; runs the current version
      current.json              {"version": ..., "previous": ...}: written by atomic publish only
      protocol.json             {"protocol": N}: the share protocol agents must speak
      versions/<version>/envy.pyz   one PEX per version (Envy + deps for Windows, macOS, Linux)
      versions/<version>/build.json what that build is: version, protocols it speaks, platforms
      start_envy_agent.bat / .command / .sh   start-up scripts for students' machines

Modules: ``layout`` (the names above), ``build`` (pex), ``publish`` (atomic
publish, rollback, status), ``launcher`` (the launcher zipapp and start-up
scripts), ``protocol`` (share protocol versions), ``entry`` (the build's entry
point: refuses a share too new for it).
"""
