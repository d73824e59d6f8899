#!/bin/bash
# Start the Envy agent (macOS). Double-click, or add to Login Items.
# Change the share path to your Envy folder. Add --render to start rendering the
# queue at once (otherwise the agent waits for a render() command).
ENVY_SHARE="${ENVY_SHARE:-/Volumes/envy}"
exec nice -n 10 python3 -m envy agent --share "$ENVY_SHARE"
