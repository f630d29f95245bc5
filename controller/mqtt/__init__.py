"""The controller's MQTT side: what a table publishes and obeys, and how a reader follows it.

* ``topics``: topic names, command and query names, payload values (the contract of
  ``docs/mqtt.md``; the dashboard reads it too);
* ``client``: broker URLs (``mqtt://``, ``mqtts://``) and paho client construction;
* ``bridge``: ``MqttBridge``, one table's controller on MQTT (state, events, commands);
* ``ha_discovery``: Home Assistant discovery messages for one table;
* ``fleet``: ``FleetClient``, a read/command view of every table on a broker (the
  dashboard's only way to a table);
* ``broker``: an embedded amqtt broker for a single-machine setup, and port helpers.

Only ``topics``, ``client`` and ``fleet`` may be used by ``dashboard/``; ``bridge`` is the
one module here that knows the controller.
"""
