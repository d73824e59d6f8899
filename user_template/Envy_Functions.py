"""Your own agent commands: send them as  NV.name(...)  from Envy IO.

Every public function here can be called on agents, e.g.

    lab3 * NV.say_hello('class')
    lab3 03 NV.disk_report()

Arguments must be plain values (text, numbers, True/False/None, lists, dicts).
A function whose first parameter is named ``agent`` receives the agent: its
log (agent.log), host facts (agent.host, agent.ip, agent.user), the share
(agent.share) and agent.run(name, argv) to start a logged child process.
Send  reload()  after editing this file.
"""

import shutil
import sys


def say_hello(agent, who="world"):
    """Write a greeting into this agent's log."""
    agent.log.info("hello %s from %s (%s)", who, agent.host, agent.ip)


def disk_report(agent, path="."):
    """Log how much disk space is free where renders are written."""
    usage = shutil.disk_usage(path)
    agent.log.info("%s: %.1f GB free of %.1f GB", path, usage.free / 1e9, usage.total / 1e9)


# The programs run_program may start, by name, with their whole command line.
# Never let a command line choose the program or its arguments: in signed mode
# anyone who gets one line accepted would have a shell on every agent
# (run_program('sh', '-c', ...)), and in unsigned mode anyone who can write the
# share would. Add your own tools here, with fixed arguments.
PROGRAMS = {
    "python-version": [sys.executable, "--version"],
}


def run_program(agent, name):
    """Run one of the PROGRAMS above as a logged child process, e.g. NV.run_program('python-version')."""
    if name not in PROGRAMS:
        agent.log.error("run_program: %r is not one of %s", name, ", ".join(sorted(PROGRAMS)))
        return
    child = agent.run(name, list(PROGRAMS[name]))
    agent.log.info("started %s as pid %d, log %s", name, child.pid, child.log_path)
