#!/bin/sh
# Start the Envy agent (Linux). Add to your desktop's autostart, or see
# docs/admin-guide.md for a systemd user unit.
# Change the share path to your Envy folder. Add --render to start rendering the
# queue at once (otherwise the agent waits for a render() command).
ENVY_SHARE="${ENVY_SHARE:-/mnt/envy}"
exec nice -n 10 python3 -m envy agent --share "$ENVY_SHARE"
