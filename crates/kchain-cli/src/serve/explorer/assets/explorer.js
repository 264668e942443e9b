// kchain explorer: polls /api/v1/overview every 2 s and draws chains, partitions, findings,
// ledgers and checkpoints; records, blocks and a transaction's path are fetched on demand
// from the topic and ledger routes (docs/openapi.json). Everything read from the log is
// hostile: it is put in the page as text (textContent), never as HTML.
"use strict";

const POLL_MS = 2000;
let lastOverview = { topics: [], ledgers: [] };


// A DOM element: el("td", {class: "x"}, "text", child, ...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

function hash(h, n) {
  if (!h) return el("span", { class: "hash" }, "-");
  return el("span", { class: "hash", title: h }, n ? h.slice(0, n) + "\u2026" : h);
}

function status(ok) {
  return el("span", { class: ok ? "ok" : "bad" }, ok ? "verified" : "FINDING");
}

function when(ms) {
  return ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "-";
}

// A link to a view of the page (#/topics/T/P/FROM, #/ledgers/C/blocks/FROM, #/ledgers/C/tx/ID).
function link(text, ...path) {
  return el("a", { href: "#/" + path.map((p) => encodeURIComponent(p)).join("/") }, text);
}

async function getJson(url) {
  const r = await fetch(url, { cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || r.status + " " + r.statusText);
  return body;
}

function replace(id, ...children) {
  document.getElementById(id).replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

// ---- the overview -------------------------------------------------------------------

function findingItem(where, f) {
  const at = f.offset === undefined || f.offset === null ? "" : "offset " + f.offset;
  return el("li", { class: "finding", "data-offset": f.offset, "data-kind": f.kind },
    where + ": ", el("strong", {}, f.kind), at ? " at " + at : "",
    f.height !== undefined && f.height !== null ? " (height " + f.height + ")" : "",
    f.detail ? ": " + f.detail : "");
}

function drawFindings(o) {
  const items = [];
  for (const t of o.topics) {
    if (t.error) items.push(el("li", { class: "finding" }, t.topic + ": " + t.error));
    for (const f of t.findings || []) items.push(findingItem(t.topic + "/" + f.partition, f));
  }
  for (const l of o.ledgers) {
    if (l.error) items.push(el("li", { class: "finding" }, "ledger " + l.ledger + ": " + l.error));
    for (const f of l.findings || []) items.push(findingItem("ledger " + l.ledger, f));
  }
  if (o.error) items.push(el("li", { class: "finding" }, "verification failed: " + o.error));
  document.getElementById("findings-section").hidden = items.length === 0;
  replace("findings", ...items);
}

function partitionRow(t, p) {
  const bad = p.finding || !p.ok;
  return el("tr", { class: bad ? "finding" : null, "data-topic": t.topic, "data-partition": p.partition },
    el("td", {}, link(String(p.partition), "topics", t.topic, p.partition, p.start_offset)),
    el("td", {}, p.entries),
    el("td", {}, p.end_offset > p.start_offset ? p.start_offset + " \u2013 " + (p.end_offset - 1) : "none"),
    el("td", { class: "tip-height" }, p.tip_height === null ? "empty" : p.tip_height),
    el("td", {}, hash(p.tip_hash, 16)),
    el("td", {}, p.pending || 0),
    el("td", {}, bad && p.finding
      ? el("span", { class: "finding", "data-offset": p.finding.offset },
        p.finding.kind + " at offset " + p.finding.offset)
      : status(p.ok)));
}

function drawTopics(o) {
  if (!o.topics.length) return replace("topics", el("p", { class: "empty" }, "no chained topic on this log"));
  replace("topics", ...o.topics.map((t) => el("div", { class: "topic", "data-topic": t.topic },
    el("h3", {}, t.topic, " ", status(t.ok)),
    t.error ? el("p", { class: "finding" }, t.error) : table(
      ["partition", "entries verified", "offsets", "tip height", "tip hash", "unsigned tail", "status"],
      (t.partitions || []).map((p) => partitionRow(t, p))),
    (t.warnings || []).map((w) => el("p", { class: "meta" }, "warning: " + w)))));
}

function drawLedgers(o) {
  if (!o.ledgers.length) return replace("ledgers", el("p", { class: "empty" }, "no ledger on this log"));
  replace("ledgers", table(
    ["ledger", "height", "tip", "transactions", "blocks topic offsets", "status"],
    o.ledgers.map((l) => el("tr", { class: l.ok ? null : "finding", "data-ledger": l.ledger },
      el("td", {}, link(l.ledger, "ledgers", l.ledger, "blocks", 0)),
      el("td", { class: "tip-height" }, l.height === undefined ? "-" : l.height),
      el("td", {}, hash(l.tip, 16)),
      el("td", {}, l.transactions === undefined ? "-" : l.transactions),
      el("td", {}, l.end_offset > l.start_offset ? l.start_offset + " \u2013 " + (l.end_offset - 1) : "-"),
      el("td", {}, l.error ? el("span", { class: "finding" }, l.error)
        : l.finding ? el("span", { class: "finding", "data-offset": l.finding.offset },
          l.finding.kind + " at offset " + l.finding.offset) : status(l.ok))))));
}

function drawCheckpoints(o) {
  const rows = [];
  const add = (chain, c) => rows.push(el("tr", {},
    el("td", {}, chain), el("td", {}, el("code", {}, c.origin)), el("td", {}, c.size),
    el("td", {}, hash(c.root, 16)), el("td", {}, (c.writers || []).join(", ") || "-"),
    el("td", { class: "cosignatures" }, c.cosignatures.length ? c.cosignatures.map((s) =>
      el("div", { class: "cosignature" }, el("strong", {}, s.witness), " at ", when(s.time * 1000)))
      : el("span", { class: "meta" }, "none"))));
  for (const t of o.topics) for (const c of t.newest_checkpoints || []) add(t.topic + "/" + c.partition, c);
  for (const l of o.ledgers) for (const c of l.newest_checkpoints || []) add("ledger " + l.ledger, c);
  if (!rows.length) {
    return replace("checkpoints", el("p", { class: "empty" },
      "no trusted checkpoint (the trust file has no checkpoint policy, or none is published yet)"));
  }
  replace("checkpoints", table(["chain", "origin", "size", "root", "signed by", "cosigned by"], rows));
}

function drawOverview(o) {
  lastOverview = o;
  const badge = document.getElementById("status");
  badge.className = "badge " + (o.ok ? "ok" : "bad");
  badge.textContent = o.ok ? "all verified" : "findings";
  replace("meta", o.backend + " log \u00b7 verified " + when(o.verified_at) + " in " + o.pass_ms
    + " ms \u00b7 pass " + o.passes);
  drawFindings(o);
  drawTopics(o);
  drawLedgers(o);
  drawCheckpoints(o);
}

async function refresh() {
  const live = document.getElementById("live");
  try {
    drawOverview(await getJson("/api/v1/overview"));
    live.className = "meta";
  } catch (e) {
    live.className = "meta stale";
    live.title = "the overview could not be read: " + e.message;
  }
}

async function poll() {
  await refresh();
  setTimeout(poll, POLL_MS);
}

// ---- records, blocks, a transaction ------------------------------------------------

function detail(title, ...children) {
  document.getElementById("detail-section").hidden = false;
  replace("detail-title", title);
  replace("detail", ...children);
}

function shown(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object" && v.base64 !== undefined) return "base64:" + v.base64;
  return typeof v === "string" ? v : JSON.stringify(v);
}

// A page of a partition: the verified records (key, value) from the records route, beside
// the links and signatures as stored (the explorer's entries route), joined by offset.
async function showRecords(topic, partition, from) {
  const t = encodeURIComponent(topic);
  const q = `from=${from}&limit=50`;
  const [records, entries] = await Promise.all([
    getJson(`/api/v1/topics/${t}/partitions/${partition}/records?${q}`).catch((e) => ({ error: e.message })),
    getJson(`/api/v1/explorer/topics/${t}/partitions/${partition}/entries?${q}`).catch((e) => ({ error: e.message })),
  ]);
  const byOffset = new Map((records.records || []).map((r) => [r.offset, r]));
  const offsets = [...new Set([...(entries.entries || []).map((e) => e.offset), ...byOffset.keys()])]
    .sort((x, y) => x - y);
  const links = new Map((entries.entries || []).map((e) => [e.offset, e]));
  // The overview's findings in this partition, shown on their rows.
  const found = new Map(lastOverview.topics.filter((x) => x.topic === topic)
    .flatMap((x) => x.findings || []).filter((f) => f.partition === partition).map((f) => [f.offset, f]));
  const rows = offsets.map((o) => {
    const e = links.get(o) || {};
    const r = byOffset.get(o) || {};
    const f = found.get(o);
    const bad = f || e.link_ok === false || e.problem || r.verified === false;
    return el("tr", { class: bad ? "finding" : null, "data-offset": o },
      el("td", {}, o), el("td", {}, e.height ?? r.height ?? "-"),
      el("td", {}, hash(e.hash || r.hash, 16)),
      el("td", {}, e.problem ? el("span", { class: "finding" }, e.problem)
        : [hash(e.prev, 16), " ", e.link_ok === false ? el("span", { class: "finding" }, "BROKEN")
          : e.link_ok ? el("span", { class: "ok" }, "\u2713") : ""]),
      el("td", {}, e.signed_by ? el("code", {}, e.signed_by) : "-"),
      el("td", {}, shown(r.key)), el("td", {}, shown(r.value)),
      el("td", {}, f ? el("span", { class: "finding" }, f.kind)
        : r.verified === false ? el("span", { class: "finding" }, shown(r.finding) || "not verified")
        : r.verified ? status(true) : "-"));
  });
  const next = entries.next ?? records.next;
  detail(`${topic} / partition ${partition}: from offset ${from}`,
    table(["offset", "height", "hash", "links to (prev)", "signed by", "key", "value", "verified"], rows),
    records.error ? el("p", { class: "meta" }, "records: " + records.error) : null,
    entries.error ? el("p", { class: "bad" }, "links: " + entries.error) : null,
    next === null || next === undefined ? null
      : el("div", { class: "pager" }, link("next page \u2192", "topics", topic, partition, next)));
}

async function showBlocks(chain, from) {
  try {
    const page = await getJson(`/api/v1/ledgers/${encodeURIComponent(chain)}/blocks?from=${from}&limit=50`);
    detail(`ledger ${chain}: blocks from height ${from}`,
      table(["height", "hash", "prev", "time", "transactions", "sealer", "signature"],
        page.blocks.map((b) => el("tr", { "data-height": b.height },
          el("td", {}, b.height), el("td", {}, hash(b.hash, 16)), el("td", {}, hash(b.prev, 16)),
          el("td", {}, when(b.timestamp)),
          el("td", {}, b.tx_count === undefined ? (b.transactions || []).length : b.tx_count),
          el("td", {}, b.sealer_name || hash(b.sealer, 16)),
          el("td", {}, hash(b.signature || b.sig, 24))))),
      page.next === null || page.next === undefined ? null
        : el("div", { class: "pager" }, link("next page \u2192", "ledgers", chain, "blocks", page.next)));
  } catch (e) {
    detail(`ledger ${chain}`, el("p", { class: "bad" }, "blocks: " + e.message));
  }
}

// A transaction's path: submitted -> sealed in block N -> covered by a checkpoint.
async function showTx(chain, id) {
  const step = (done, ...text) => el("span", { class: "step " + (done ? "done" : "missing") }, ...text);
  try {
    const tx = await getJson(`/api/v1/ledgers/${encodeURIComponent(chain)}/transactions/${id}`);
    const overview = await getJson("/api/v1/overview");
    const ledger = overview.ledgers.find((l) => l.ledger === chain) || {};
    const cp = (ledger.newest_checkpoints || [])[0];
    const sealed = tx.status === "sealed";
    const covered = sealed && cp && cp.size > tx.block;
    replace("tx", el("div", { class: "path" },
      step(true, "submitted ", hash(tx.id || id, 16)), "\u2192",
      tx.status === "rejected" ? step(false, el("span", { class: "bad" }, "rejected: " + (tx.reason || "")))
        : step(sealed, sealed ? `sealed in block ${tx.block} (index ${tx.index})` : "pending"), "\u2192",
      step(covered, covered ? `checkpoint of size ${cp.size}, cosigned by `
        + (cp.cosignatures.map((s) => s.witness).join(", ") || "no witness") : "no checkpoint covers it yet")));
  } catch (e) {
    replace("tx", el("p", { class: "bad" }, "transaction: " + e.message));
  }
}

document.getElementById("tx-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const chain = document.getElementById("tx-chain").value.trim();
  location.hash = "#/ledgers/" + encodeURIComponent(chain) + "/tx/" + document.getElementById("tx-id").value.trim();
});

// The view the address names, so that a view can be linked to and reloaded.
function route() {
  const [kind, name, a, b] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (kind === "topics" && name) showRecords(name, Number(a) || 0, Number(b) || 0);
  else if (kind === "ledgers" && name && a === "blocks") showBlocks(name, Number(b) || 0);
  else if (kind === "ledgers" && name && a === "tx" && b) {
    document.getElementById("tx-chain").value = name;
    document.getElementById("tx-id").value = b;
    showTx(name, b);
  }
}

window.addEventListener("hashchange", route);
// The first overview before the view, which marks the overview's findings on its rows.
refresh().then(route).then(() => setTimeout(poll, POLL_MS));
