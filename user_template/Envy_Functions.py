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


def say_hello(agent, who="world"):
    """Write a greeting into this agent's log."""
    agent.log.info("hello %s from %s (%s)", who, agent.host, agent.ip)


def disk_report(agent, path="."):
    """Log how much disk space is free where renders are written."""
    usage = shutil.disk_usage(path)
    agent.log.info("%s: %.1f GB free of %.1f GB", path, usage.free / 1e9, usage.total / 1e9)


def run_program(agent, *argv):
    """Run a program as a logged child process, e.g. NV.run_program('python', '--version')."""
    child = agent.run("program", list(argv))
    agent.log.info("started %s as pid %d, log %s", argv[0], child.pid, child.log_path)
