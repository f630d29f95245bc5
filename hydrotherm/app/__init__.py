"""The composition root: the one place that builds and wires the parts.

The data path is board → link (``firmware_bridge``) → supervisor and control law
(``controller``) → MQTT (``controller.mqtt``) → dashboard (``dashboard``).  None of those
packages builds another's objects or knows the simulator; this package decides which
board a controller drives (a real one at ``--port``, or a simulated one from ``sim``) and
which broker the bridge and the dashboard share.  One module per command:

* ``run``: ``hydrotherm run`` (one table on a real board);
* ``demo``: ``hydrotherm demo`` (simulated tables, controllers, broker and dashboard);
* ``autotune``: ``hydrotherm autotune`` (``--sim`` in-process, or a real board);
* ``sim``: ``hydrotherm sim``, the tester's simulator commands, ``scenario run``;
* ``monitor``, ``events``: the link alone; the event log;
* ``stack``: ``LocalStack``, a whole table in-process for tests and benchmarks;
* ``parts``: the building blocks the commands share.

``hydrotherm.cli`` parses arguments and calls these; nothing below imports this package.
"""
