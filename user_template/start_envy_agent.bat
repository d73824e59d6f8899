@echo off
rem Start the Envy agent at log-in (Windows). Put a shortcut to this file in
rem shell:startup, or let the admin deploy it (see docs/admin-guide.md).
rem Change Z:\envy to your Envy folder. Add --render to start rendering the
rem queue at once (otherwise the agent waits for a render() command).
set ENVY_SHARE=Z:\envy
start "Envy agent" /min /low pythonw -m envy agent --share "%ENVY_SHARE%"
