"""Everything that differs between Windows, macOS and Linux lives in this package.

Other modules never branch on ``sys.platform`` themselves: they call the
functions here (files, host facts, processes), so a port or a fix for one OS
touches one folder.
"""
