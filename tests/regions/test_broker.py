"""The worker's channel closes cleanly after its broker connection is gone (``regions.broker``).

The chaos scenario ``broker_stopped`` shows the whole story with a real worker
(it must keep its PID through the outage); this reproduces the crash path of
kombu's Redis transport directly, on a real Redis: a message consumed with
``acks_late`` semantics (not yet acknowledged), then the channel closed after
the transport forgot its connection, as it has when the consumer closes a
connection the broker dropped.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis

from regions import broker


@pytest.fixture
def channel_with_an_unacked_message(harness):
    redis_server = harness.region("eu-west-1").redis
    name = f"test-broker-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    connection = Connection(redis_server.url(5))
    channel: Any = connection.channel()  # the virtual transport's Channel (basic_get)
    producer = connection.Producer(channel)
    producer.publish({"n": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
    message = channel.basic_get(name, no_ack=False)
    assert message is not None
    yield connection, channel, redis_server.client(5)
    redis_server.client(5).flushdb()


def test_closing_a_channel_whose_transport_lost_its_connection_keeps_the_worker_alive(
    channel_with_an_unacked_message,
):
    connection, channel, client = channel_with_an_unacked_message
    broker.install()
    connection.transport.client = None  # what Connection._do_close_transport leaves behind
    channel.close()  # kombu 5.7 unguarded: AttributeError ('NoneType' ... 'hostname')
    # The message was not put back on its queue, nor lost: it waits in the unacked
    # index for restore_visible (the visibility timeout).
    assert client.hlen("unacked") == 1


def test_install_is_idempotent_and_other_restores_run_unchanged(channel_with_an_unacked_message):
    connection, channel, client = channel_with_an_unacked_message
    broker.install()
    guarded = kombu_redis.QoS.restore_unacked
    broker.install()
    assert kombu_redis.QoS.restore_unacked is guarded  # not wrapped twice
    channel.close()  # a normal close: the unacked message goes back on its queue
    assert client.hlen("unacked") == 0
    assert sum(client.llen(key) for key in client.scan_iter("test-broker-*")) == 1
    connection.release()
