"""The account ACL (``controller.mqtt.accounts``) as an amqtt topic plugin.

amqtt 0.12 ships ``TopicAccessControlListPlugin``, but its filter comparison lets a
requested ``#`` pass an allowed ``+`` (``hydrotherm/#`` would be accepted against
``hydrotherm/+``), and it has no notion of roles.  This plugin asks the same functions the
Mosquitto ACL file is generated from, so the two brokers cannot disagree.

Loaded by dotted path from ``controller.broker``; its configuration is the prefixes (the
usernames are judged by their role, so a table added later needs no broker restart, only
a password).
"""

from __future__ import annotations

from dataclasses import dataclass

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseTopicPlugin
from amqtt.session import Session

from .accounts import may_publish, may_receive, may_subscribe, rules_for


class AccountAclPlugin(BaseTopicPlugin):
    """Allows a publish, subscribe or delivery only if the session's account may."""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)

    async def topic_filtering(self, *, session: Session | None = None,
                              topic: str | None = None,
                              action: Action | None = None) -> bool | None:
        if session is None or not session.username or not topic:
            return False
        cfg = self.context.config
        rules = rules_for(session.username, cfg.prefix, cfg.discovery_prefix)  # type: ignore[union-attr]
        if action == Action.PUBLISH:
            return may_publish(rules, topic)
        if action == Action.SUBSCRIBE:
            return may_subscribe(rules, topic)
        if action == Action.RECEIVE:
            return may_receive(rules, topic)
        return False

    @dataclass
    class Config:
        prefix: str = "hydrotherm"
        discovery_prefix: str = "homeassistant"
