"""kchain's HTTP API from Python with `requests`: create a chained topic, produce a batch,
read the records back verified, and verify the topic. Against a running `kchain serve`:

    KCHAIN_URL=http://127.0.0.1:8080 KCHAIN_TOKEN=... KCHAIN_TOPIC=orders python examples/client.py
"""

import base64
import os
import sys

import requests

url = os.environ.get("KCHAIN_URL", "http://127.0.0.1:8080")
topic = os.environ.get("KCHAIN_TOPIC", "orders")
api = requests.Session()
api.headers["Authorization"] = "Bearer " + os.environ["KCHAIN_TOKEN"]
# With HTTPS and a private CA: api.verify = "/path/to/ca.pem"

# Create the topic (409: it exists already).
r = api.post(f"{url}/api/v1/topics", json={"name": topic, "partitions": 1})
if r.status_code not in (201, 409):
    sys.exit(f"create: {r.status_code} {r.json()['error']['message']}")

# Produce a batch; each record's partition, offset and height come back in order.
records = [
    {"key": "customer-7", "value": "2 apples", "headers": {"source": "python"}},
    {"key": "customer-7", "value": "3 pears"},
    {"value_b64": base64.b64encode(bytes([255, 254])).decode()},
]
r = api.post(f"{url}/api/v1/topics/{topic}/records", json={"records": records})
r.raise_for_status()
for placed in r.json()["records"]:
    print("appended", placed)

# Read every record back, verified from genesis, page by page.
offset = None
while True:
    params = {"limit": 100} if offset is None else {"limit": 100, "from": offset}
    page = api.get(f"{url}/api/v1/topics/{topic}/partitions/0/records", params=params).json()
    for rec in page["records"]:
        print(rec["offset"], rec["key"], rec["value"])
    if page.get("finding"):
        print("finding:", page["finding"])
    offset = page["next"]
    if offset is None:
        break

# Verify the topic: "exit" is what `kchain verify` would exit with (0 verified, 3 findings).
report = api.get(f"{url}/api/v1/topics/{topic}/verify").json()
entries = sum(p["entries"] for p in report["partitions"])
print(f"verify: ok={str(report['ok']).lower()} entries={entries}")
sys.exit(report["exit"])
