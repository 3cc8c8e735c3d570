"""Entry points without the Functions host: the `fraudops` command, the local server, demo, simulation, replay."""
