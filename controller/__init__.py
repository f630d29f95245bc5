"""Control loop, safety supervisor, event log and MQTT (issue 3 onwards)."""
