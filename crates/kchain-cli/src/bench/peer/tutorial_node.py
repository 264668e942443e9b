#!/usr/bin/env python3
"""The peer kchain's ledger is compared with: the Python "blockchain on Kafka" node of the
tutorial kchain grew from (docs/benchmarks.md), written again for kchain on kafka-python as
that tutorial describes it, and run against the same broker in the same `kchain bench peer`:

  * a `blockchain` topic of one partition holds the blocks as JSON; a new chain starts with a
    genesis block; a block links to the SHA-256 of the previous block's sorted JSON;
  * the node consumes one partition of a `transactions` topic (two partitions) from its
    latest offset and makes a block every three transactions;
  * before each block, the consensus step: is the node's last known offset of the blockchain
    topic still the latest? If other nodes appended blocks, it reads and validates them;
  * proof of work: a number whose SHA-256 with the previous block's proof starts with four
    hexadecimal zeros; the block also pays the node a reward transaction;
  * the block is published to the blockchain topic (here: waiting for the broker's ack).

Prints one JSON line: transactions, blocks, seconds (first transaction sent to last block
acknowledged), tx_per_s, pow_seconds.

  tutorial_node.py -b BROKERS --prefix NAME --transactions N
"""
import argparse
import hashlib
import json
import threading
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

TXS_PER_BLOCK = 3
DIFFICULTY_PREFIX = "0000"


def block_hash(block):
    return hashlib.sha256(json.dumps(block, sort_keys=True).encode()).hexdigest()


def valid_proof(last_proof, proof):
    guess = f"{last_proof}{proof}".encode()
    return hashlib.sha256(guess).hexdigest()[:4] == DIFFICULTY_PREFIX


def proof_of_work(last_proof):
    proof = 0
    while not valid_proof(last_proof, proof):
        proof += 1
    return proof


def valid_block(block, previous):
    return (block["previous_hash"] == block_hash(previous)
            and valid_proof(previous["proof"], block["proof"]))


class Node:
    def __init__(self, brokers, prefix):
        self.brokers = brokers
        self.chain_topic = f"{prefix}.blockchain"
        self.tx_topic = f"{prefix}.transactions"
        self.producer = KafkaProducer(bootstrap_servers=brokers, acks=1, linger_ms=0)
        self.chain = []
        self.next_offset = 0
        self.id = uuid.uuid4().hex
        self.pow_seconds = 0.0

    def create_topics(self):
        admin = KafkaAdminClient(bootstrap_servers=self.brokers)
        admin.create_topics([NewTopic(self.chain_topic, 1, 1), NewTopic(self.tx_topic, 2, 1)])
        admin.close()

    def latest_chain_offset(self):
        consumer = KafkaConsumer(bootstrap_servers=self.brokers)
        tp = TopicPartition(self.chain_topic, 0)
        end = consumer.end_offsets([tp])[tp]
        consumer.close()
        return end

    def publish(self, block):
        meta = self.producer.send(self.chain_topic, json.dumps(block).encode(), partition=0).get(30)
        self.next_offset = meta.offset + 1
        self.chain.append(block)

    def read_and_validate_chain(self, end):
        """Reads the blocks from the next unread offset to `end`, keeping the valid ones."""
        if self.next_offset >= end:
            return
        consumer = KafkaConsumer(bootstrap_servers=self.brokers, enable_auto_commit=False)
        tp = TopicPartition(self.chain_topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, self.next_offset)
        while self.next_offset < end:
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    block = json.loads(r.value)
                    if not self.chain or valid_block(block, self.chain[-1]):
                        self.chain.append(block)
                    self.next_offset = r.offset + 1
        consumer.close()

    def init_chain(self):
        end = self.latest_chain_offset()
        if end == 0:
            self.publish({"index": 1, "timestamp": time.time(), "transactions": [],
                          "proof": 100, "previous_hash": "1"})
        else:
            self.read_and_validate_chain(end)

    def mine(self, transactions):
        # Consensus: is our chain still the longest, or did another node append blocks?
        self.read_and_validate_chain(self.latest_chain_offset())
        last = self.chain[-1]
        started = time.perf_counter()
        proof = proof_of_work(last["proof"])
        self.pow_seconds += time.perf_counter() - started
        reward = {"sender": "0", "recipient": self.id, "amount": 1}
        self.publish({"index": last["index"] + 1, "timestamp": time.time(),
                      "transactions": transactions + [reward], "proof": proof,
                      "previous_hash": block_hash(last)})


def send_transactions(brokers, topic, n):
    producer = KafkaProducer(bootstrap_servers=brokers, acks=1)
    for i in range(n):
        tx = {"sender": f"s{i % 7}", "recipient": f"r{i % 5}", "amount": 1 + i % 3}
        producer.send(topic, json.dumps(tx).encode(), partition=0)
    producer.flush()
    producer.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-b", "--brokers", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--transactions", type=int, default=300)
    a = ap.parse_args()
    n = max(TXS_PER_BLOCK, a.transactions - a.transactions % TXS_PER_BLOCK)
    node = Node(a.brokers, a.prefix)
    node.create_topics()
    node.init_chain()
    consumer = KafkaConsumer(bootstrap_servers=a.brokers, enable_auto_commit=False)
    tp = TopicPartition(node.tx_topic, 0)
    consumer.assign([tp])
    consumer.seek_to_end(tp)
    consumer.position(tp)  # from the latest offset, as the tutorial's node starts
    started = time.perf_counter()
    sender = threading.Thread(target=send_transactions, args=(a.brokers, node.tx_topic, n))
    sender.start()
    pending, sealed, blocks = [], 0, 0
    while sealed < n:
        for records in consumer.poll(timeout_ms=1000).values():
            for r in records:
                pending.append(json.loads(r.value))
                if len(pending) == TXS_PER_BLOCK:
                    node.mine(pending)
                    sealed += len(pending)
                    blocks += 1
                    pending = []
    seconds = time.perf_counter() - started
    sender.join()
    print(json.dumps({"transactions": n, "blocks": blocks, "seconds": seconds,
                      "tx_per_s": n / seconds, "pow_seconds": node.pow_seconds}))


if __name__ == "__main__":
    main()
