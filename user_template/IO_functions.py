"""Your own shell commands: type  IO.name(...)  in Envy IO; they run in the shell itself.

A function whose first parameter is named ``io`` receives the shell: io.send(line)
writes a command for agents, io.print(text) prints, io.share is the Envy folder.
"""


def hello_lab(io, lab="lab3"):
    """Ask every host of a lab to say hello in its log."""
    io.send(f"{lab} * NV.say_hello('{lab}')")


def render_lab(io, lab="lab3"):
    """Set a whole lab rendering the queue."""
    io.send(f"{lab} * render()")
    io.print(f"asked every host of {lab} to render")
