#!/usr/bin/env python3
"""Kafka clients that kchain did not write (kafka-python, confluent-kafka), used by kchain's
interoperability tests: read a partition as any consumer would, or forge records into a
chained partition as an attacker with producer access could.

  kclient.py read  --client C -b BROKERS -t TOPIC -p PARTITION
      one JSON object per record: offset, timestamp, key, value (base64), headers [[name, b64]]
  kclient.py forge --client C -b BROKERS -t TOPIC -p PARTITION --mode MODE
      copy        copy the last record's headers (kchain's too) onto an edited value
      recompute   a record that correctly links to the last one (height, prev hash computed
                  here from docs/format.md), without a signature
      plain       a record without kchain headers
      prints the offset the broker gave the forged record
  kclient.py json  --client C -b BROKERS -t TOPIC -p PARTITION
      one JSON object per record: offset, and value parsed as JSON here (fails if it is not),
      as any application reading a JSON topic would (the ledger's blocks topic)
"""
import argparse
import base64
import hashlib
import json
import sys
import time
import uuid


def tag(t):
    return bytes([len(t)]) + t


def lp(b):
    return len(b).to_bytes(4, "big") + b


def opt(b):
    return b"\x00" if b is None else b"\x01" + lp(b)


def entry_hash(topic, partition, height, prev, ts, key, value, app_headers):
    """kchain's entry hash of a one-item entry, from docs/format.md."""
    item = (tag(b"kchain:item:v1") + ts.to_bytes(8, "big", signed=True) + opt(key) + opt(value)
            + len(app_headers).to_bytes(4, "big")
            + b"".join(lp(n.encode()) + lp(v) for n, v in app_headers))
    leaf = hashlib.sha256(b"\x00" + item).digest()
    chain = hashlib.sha256(tag(b"kchain:chain:v1") + lp(f"{topic}/{partition}".encode())).digest()[:16]
    header = (tag(b"kchain:entry:v1") + b"\x01" + chain + height.to_bytes(8, "big") + prev
              + ts.to_bytes(8, "big", signed=True) + leaf + (1).to_bytes(4, "big"))
    return hashlib.sha256(header).digest()


class KafkaPython:
    def __init__(self, brokers):
        import kafka
        self.kafka = kafka
        self.brokers = brokers

    def read(self, topic, partition):
        k = self.kafka
        consumer = k.KafkaConsumer(bootstrap_servers=self.brokers, group_id=None,
                                   enable_auto_commit=False, auto_offset_reset="earliest")
        tp = k.TopicPartition(topic, partition)
        consumer.assign([tp])
        end = consumer.end_offsets([tp])[tp]
        consumer.seek_to_beginning(tp)
        out = []
        deadline = time.time() + 60
        while (not out or out[-1]["offset"] < end - 1) and time.time() < deadline and end > 0:
            for records in consumer.poll(timeout_ms=1000).values():
                for m in records:
                    out.append(dict(offset=m.offset, timestamp=m.timestamp, key=m.key, value=m.value,
                                    headers=[(n, v) for n, v in (m.headers or [])]))
        consumer.close()
        return out

    def produce(self, topic, partition, key, value, headers, ts):
        producer = self.kafka.KafkaProducer(bootstrap_servers=self.brokers, acks="all")
        meta = producer.send(topic, partition=partition, key=key, value=value, headers=headers,
                             timestamp_ms=ts).get(timeout=60)
        producer.close()
        return meta.offset


class Confluent:
    def __init__(self, brokers):
        import confluent_kafka
        self.ck = confluent_kafka
        self.brokers = brokers

    def read(self, topic, partition):
        ck = self.ck
        consumer = ck.Consumer({"bootstrap.servers": self.brokers, "group.id": "kchain-interop-" + uuid.uuid4().hex,
                                "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        low, high = consumer.get_watermark_offsets(ck.TopicPartition(topic, partition), timeout=30)
        consumer.assign([ck.TopicPartition(topic, partition, low)])
        out = []
        deadline = time.time() + 60
        while (not out or out[-1]["offset"] < high - 1) and time.time() < deadline and high > low:
            m = consumer.poll(1.0)
            if m is None:
                continue
            if m.error():
                raise RuntimeError(str(m.error()))
            out.append(dict(offset=m.offset(), timestamp=m.timestamp()[1], key=m.key(), value=m.value(),
                            headers=list(m.headers() or [])))
        consumer.close()
        return out

    def produce(self, topic, partition, key, value, headers, ts):
        got = {}
        producer = self.ck.Producer({"bootstrap.servers": self.brokers, "acks": "all"})

        def done(err, msg):
            got["err"], got["offset"] = err, msg.offset()

        producer.produce(topic, partition=partition, key=key, value=value, headers=headers,
                         timestamp=ts, on_delivery=done)
        producer.flush(60)
        if got.get("err") is not None or "offset" not in got:
            raise RuntimeError(f"delivery failed: {got}")
        return got["offset"]


def b64(b):
    return None if b is None else base64.b64encode(b).decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["read", "forge", "json"])
    ap.add_argument("--client", choices=["kafka-python", "confluent"], required=True)
    ap.add_argument("-b", "--brokers", required=True)
    ap.add_argument("-t", "--topic", required=True)
    ap.add_argument("-p", "--partition", type=int, default=0)
    ap.add_argument("--mode", choices=["copy", "recompute", "plain"])
    a = ap.parse_args()
    client = (KafkaPython if a.client == "kafka-python" else Confluent)(a.brokers)
    if a.command == "read":
        for r in client.read(a.topic, a.partition):
            print(json.dumps(dict(offset=r["offset"], timestamp=r["timestamp"], key=b64(r["key"]),
                                  value=b64(r["value"]), headers=[[n, b64(v)] for n, v in r["headers"]])))
        return
    if a.command == "json":
        for r in client.read(a.topic, a.partition):
            print(json.dumps(dict(offset=r["offset"], value=json.loads(r["value"].decode("utf-8")))))
        return
    last = client.read(a.topic, a.partition)[-1]
    # Every header but the five chain headers is part of the item (kchain.enc included).
    chain = {"kchain.v", "kchain.height", "kchain.prev", "kchain.key", "kchain.sig"}
    app = [(n, v) for n, v in last["headers"] if n not in chain]
    ts = last["timestamp"] + 1
    if a.mode == "copy":
        offset = client.produce(a.topic, a.partition, last["key"], (last["value"] or b"") + b" (edited)",
                                last["headers"], last["timestamp"])
    elif a.mode == "recompute":
        hdr = dict(last["headers"])
        height = int(hdr["kchain.height"])
        prev = entry_hash(a.topic, a.partition, height, bytes.fromhex(hdr["kchain.prev"].decode()),
                          last["timestamp"], last["key"], last["value"], app)
        value = b'{"forged": true}'
        headers = app + [("kchain.v", b"1"), ("kchain.height", str(height + 1).encode()),
                         ("kchain.prev", prev.hex().encode())]
        offset = client.produce(a.topic, a.partition, last["key"], value, headers, ts)
    else:
        offset = client.produce(a.topic, a.partition, b"intruder", b"plain record", [], ts)
    print(offset)


if __name__ == "__main__":
    sys.exit(main())
