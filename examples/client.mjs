// kchain's HTTP API from Node.js 20 with its built-in fetch (no npm packages): create a
// chained topic, produce a batch, read the records back verified, and verify the topic.
//   KCHAIN_URL=http://127.0.0.1:8080 KCHAIN_TOKEN=... KCHAIN_TOPIC=orders node examples/client.mjs
const url = process.env.KCHAIN_URL ?? "http://127.0.0.1:8080";
const topic = process.env.KCHAIN_TOPIC ?? "orders";
const headers = {
  Authorization: `Bearer ${process.env.KCHAIN_TOKEN}`,
  "Content-Type": "application/json",
};
const post = (path, body) =>
  fetch(url + path, { method: "POST", headers, body: JSON.stringify(body) });
const get = async (path) => {
  const r = await fetch(url + path);
  if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
  return r.json();
};

// Create the topic (409: it exists already).
const created = await post("/api/v1/topics", { name: topic, partitions: 1 });
if (created.status !== 201 && created.status !== 409) {
  throw new Error(`create: ${created.status} ${await created.text()}`);
}

// Produce a batch; each record's partition, offset and height come back in order.
const produced = await post(`/api/v1/topics/${topic}/records`, {
  records: [
    { key: "customer-7", value: "2 apples", headers: { source: "node" } },
    { key: "customer-7", value: "3 pears" },
    { value_b64: Buffer.from([255, 254]).toString("base64") },
  ],
});
if (!produced.ok) throw new Error(`produce: ${produced.status} ${await produced.text()}`);
for (const placed of (await produced.json()).records) console.log("appended", placed);

// Read every record back, verified from genesis, page by page.
let from = null;
do {
  const query = from === null ? "limit=100" : `limit=100&from=${from}`;
  const page = await get(`/api/v1/topics/${topic}/partitions/0/records?${query}`);
  for (const rec of page.records) console.log(rec.offset, rec.key, rec.value);
  if (page.finding) console.log("finding:", page.finding);
  from = page.next;
} while (from !== null);

// Verify the topic: "exit" is what `kchain verify` would exit with (0 verified, 3 findings).
const report = await get(`/api/v1/topics/${topic}/verify`);
const entries = report.partitions.reduce((n, p) => n + p.entries, 0);
console.log(`verify: ok=${report.ok} entries=${entries}`);
process.exit(report.exit);
