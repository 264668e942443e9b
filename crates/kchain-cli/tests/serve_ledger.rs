//! `kchain serve`, the ledger routes, through the binary: a ledger made with the CLI, transfers
//! submitted over HTTP (raw bytes and JSON) that go from pending to sealed when a sealer
//! (`kchain node run --seal`, a process of its own) runs, blocks and accounts read back, a
//! transaction proof that `kchain ledger verify-proof` accepts, and the `ledger verify` report.
//! A bad signature, a transaction of another ledger, garbage, an oversized body, another
//! content type and a missing, wrong or misplaced token are refused with their 4xx, and
//! nothing of them reaches the transactions topic. Once on Kafka (tansu) as well.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use kchain_core::WriterKey;
use kchain_ledger::{Address, Genesis, Transaction};
use kchain_log::{EmbeddedLog, EmbeddedOptions, Log};
use serde_json::{json, Value};
use support::serve::Serving;
use support::Env;

const TOKEN: &str = "bank-token-0123456789";
const OTHER_TOKEN: &str = "other-token-0123456789";

/// Starts `kchain serve` on a free port with a tokens file allowing `TOKEN` to submit to
/// `chain` and `OTHER_TOKEN` to another ledger; returns it once it listens.
fn serve(k: &Env, chain: &str) -> Serving {
    let tokens = k.dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"bank\"\ntoken = \"{TOKEN}\"\nledgers = [\"{chain}\"]\n\n\
             [[token]]\nname = \"other\"\ntoken = \"{OTHER_TOKEN}\"\nledgers = [\"elsewhere\"]\n"
        ),
    )
    .unwrap();
    Serving::start(
        k,
        &["--tokens", tokens.to_str().unwrap(), "--max-body", "4096"],
    )
}

/// One HTTP/1.1 request on its own connection; returns the status and the body as JSON
/// (`null` when it is not JSON). Plain TCP, so that any bytes and headers can be sent.
fn http(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += "\r\n";
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before reading all of a large body.
    let _ = s.write_all(body);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no answer: {text:?}"));
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn get(url: &str, path: &str) -> (u16, Value) {
    http(url, "GET", path, &[], b"")
}

/// Submits `body` of `content_type` to ledger `chain` with `token` (none: no header).
fn post_tx(
    url: &str,
    chain: &str,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    let path = format!("/api/v1/ledgers/{chain}/transactions");
    http(url, "POST", &path, &headers, body)
}

/// The canonical body followed by the signature: the raw form of a transaction.
fn raw(t: &Transaction) -> Vec<u8> {
    let mut bytes = t.encoding().to_vec();
    bytes.extend_from_slice(t.signature());
    bytes
}

/// A ledger `chain` made with the CLI: alice funded with 1000; returns (alice's key, bob's
/// address, the sealer's key file, the genesis file, the genesis).
struct Ledger {
    alice: WriterKey,
    bob: WriterKey,
    sealer_key: String,
    genesis_file: String,
    genesis: Genesis,
}

fn ledger(k: &Env, chain: &str) -> Ledger {
    let dir = k.dir.path();
    let alice = k.wallet(dir, "alice");
    let bob = k.wallet(dir, "bob");
    let sealer = k.wallet(dir, "sealer");
    let genesis_file = dir.join("genesis.toml").to_str().unwrap().to_owned();
    k.ok(
        &[
            "ledger",
            "genesis",
            "--chain",
            chain,
            "--sealer",
            &sealer.path,
            "--fund",
            &format!("{}=1000", alice.address),
            "--partitions",
            "2",
            "--out",
            &genesis_file,
        ],
        "",
    );
    k.ok(&["ledger", "init", "--genesis", &genesis_file], "");
    let text = std::fs::read_to_string(&genesis_file).unwrap();
    let key = |w: &support::Wallet| kchain_topic::files::read_key_file(Path::new(&w.path)).unwrap();
    Ledger {
        alice: key(&alice),
        bob: key(&bob),
        sealer_key: sealer.path,
        genesis_file,
        genesis: Genesis::from_file_text(&text).unwrap().0,
    }
}

/// Runs a sealer of `chain` until nothing is left to seal.
fn seal(k: &Env, chain: &str, sealer_key: &str) {
    seal_blocks_of(k, chain, sealer_key, 10_000);
}

/// Runs a sealer of `chain`, at most `block_txs` transactions a block, until nothing is left.
fn seal_blocks_of(k: &Env, chain: &str, sealer_key: &str, block_txs: usize) {
    k.ok(
        &[
            "node",
            "run",
            "--chain",
            chain,
            "--seal",
            "--key",
            sealer_key,
            "--block-txs",
            &block_txs.to_string(),
            "--until-idle",
            "-q",
        ],
        "",
    );
}

/// Records in the ledger's transactions topic (embedded log, read beside the server).
fn transactions(k: &Env, l: &Ledger) -> u64 {
    let log = EmbeddedLog::open(k.data(), EmbeddedOptions::default()).unwrap();
    (0..l.genesis.transaction_partitions)
        .map(|p| log.end_offset(&l.genesis.topics.transactions, p).unwrap())
        .sum()
}

#[test]
fn ledger_over_http_submit_seal_read_prove_verify() {
    let k = Env::new();
    let chain = "bank";
    let l = ledger(&k, chain);
    let server = serve(&k, chain);
    let url = server.url.clone();
    let id = l.genesis.chain_id();
    let bob = Address::of(&l.bob);
    let alice = Address::of(&l.alice);

    // One transfer as raw bytes, the next as JSON, and one bob cannot pay (rejected later).
    let first = Transaction::transfer(&l.alice, id, bob, 10, 1);
    let (status, body) = post_tx(
        &url,
        chain,
        Some(TOKEN),
        "application/octet-stream",
        &raw(&first),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["id"], kchain_core::to_hex(first.id()));
    let second = Transaction::transfer(&l.alice, id, bob, 5, 2);
    let (status, body) = post_tx(
        &url,
        chain,
        Some(TOKEN),
        "application/json",
        &second.to_json(),
    );
    assert_eq!(status, 202, "{body}");
    let overdraft = Transaction::transfer(&l.bob, id, alice, 5000, 1);
    let wrapped = json!({ "tx": overdraft.to_json_value() }).to_string();
    let (status, body) = post_tx(
        &url,
        chain,
        Some(TOKEN),
        "application/json",
        wrapped.as_bytes(),
    );
    assert_eq!(status, 202, "{body}");
    let tx_path = |t: &Transaction| {
        format!(
            "/api/v1/ledgers/{chain}/transactions/{}",
            kchain_core::to_hex(t.id())
        )
    };
    let (status, body) = get(&url, &tx_path(&first));
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("pending")),
        "{body}"
    );
    assert_eq!(transactions(&k, &l), 3);

    refusals(&l, &url, chain);
    assert_eq!(transactions(&k, &l), 3, "nothing refused was appended");

    seal(&k, chain, &l.sealer_key);
    for t in [&first, &second] {
        let (status, body) = get(&url, &tx_path(t));
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("sealed")),
            "{body}"
        );
        assert!(body["height"].as_u64().unwrap() >= 1, "{body}");
    }
    let (status, body) = get(&url, &tx_path(&overdraft));
    assert_eq!(status, 200);
    assert_eq!(body["status"], "rejected", "{body}");
    assert_eq!(body["reason"], "overdraft", "{body}");

    reads(&url, chain, &l, &first);

    // The proof, written to a file, holds offline against the genesis.
    let (status, proof) = get(&url, &format!("{}/proof", tx_path(&first)));
    assert_eq!(status, 200, "{proof}");
    let file = k.dir.path().join("proof.json");
    std::fs::write(&file, proof.to_string()).unwrap();
    let out = k.ok(
        &[
            "ledger",
            "verify-proof",
            file.to_str().unwrap(),
            "--genesis",
            &l.genesis_file,
        ],
        "",
    );
    assert!(out.contains("included"), "{out}");
    let (status, body) = get(&url, &format!("{}/proof", tx_path(&overdraft)));
    assert_eq!(status, 404, "a rejected transaction has no proof: {body}");

    let (status, report) = get(&url, &format!("/api/v1/ledgers/{chain}/verify"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["ok"].as_bool(), report["exit"].as_u64()),
        (Some(true), Some(0)),
        "{report}"
    );
    assert!(report["height"].as_u64().unwrap() >= 1, "{report}");

    let page = text(&url, "/metrics");
    assert!(
        page.contains(&format!(
            "kchain_tip_height{{kind=\"ledger\",chain=\"{chain}\"}}"
        )),
        "{page}"
    );
    assert_eq!(server.stop(), Some(0), "kchain serve after SIGTERM");
}

/// The body of `GET path` as text (for the metrics page).
fn text(url: &str, path: &str) -> String {
    let client = kchain_http::Client::new(&kchain_http::ClientOptions::default()).unwrap();
    client.get(&format!("{url}{path}")).unwrap().text()
}

/// Everything refused, with its status and code.
fn refusals(l: &Ledger, url: &str, chain: &str) {
    let id = l.genesis.chain_id();
    let bob = Address::of(&l.bob);
    let good = Transaction::transfer(&l.alice, id, bob, 1, 3);
    let json_type = "application/json";
    let code = |r: (u16, Value)| (r.0, r.1["error"]["code"].as_str().unwrap_or("").to_owned());

    // A signature with one bit flipped, as raw bytes and as JSON.
    let mut bad = raw(&good);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let r = post_tx(url, chain, Some(TOKEN), "application/octet-stream", &bad);
    assert_eq!(code(r), (400, "bad_signature".into()));
    let mut v = good.to_json_value();
    let sig = v["signature"].as_str().unwrap().to_owned();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    v["signature"] = json!(format!("{flipped}{}", &sig[1..]));
    let r = post_tx(url, chain, Some(TOKEN), json_type, v.to_string().as_bytes());
    assert_eq!(code(r).0, 400);

    // Signed for another ledger.
    let other = Transaction::transfer(&l.alice, kchain_core::ChainId([7; 16]), bob, 1, 3);
    let r = post_tx(url, chain, Some(TOKEN), json_type, &other.to_json());
    assert_eq!(code(r), (400, "wrong_chain".into()));

    // Garbage, as bytes and as JSON; another content type.
    for (ct, body) in [
        ("application/octet-stream", &b"\x00\x01garbage"[..]),
        ("application/octet-stream", &b"{not json"[..]),
        (json_type, &b"[1, 2, 3]"[..]),
        (json_type, &br#"{"type":"transfer"}"#[..]),
    ] {
        let r = post_tx(url, chain, Some(TOKEN), ct, body);
        assert_eq!(code(r), (400, "malformed".into()), "{ct} {body:?}");
    }
    let r = post_tx(url, chain, Some(TOKEN), "text/plain", &good.to_json());
    assert_eq!(code(r).0, 415);

    // Larger than --max-body.
    let big = vec![b'x'; 64 << 10];
    let r = post_tx(url, chain, Some(TOKEN), "application/octet-stream", &big);
    assert_eq!(code(r).0, 413);

    // No token, a wrong one, one for another ledger: refused before the body is looked at.
    let r = post_tx(url, chain, None, json_type, &good.to_json());
    assert_eq!(code(r), (401, "unauthorized".into()));
    let r = post_tx(
        url,
        chain,
        Some("not-the-token-0123456"),
        json_type,
        &good.to_json(),
    );
    assert_eq!(code(r), (401, "unauthorized".into()));
    let r = post_tx(url, chain, Some(OTHER_TOKEN), json_type, &good.to_json());
    assert_eq!(code(r), (403, "forbidden".into()));

    // Reads of what is not there.
    assert_eq!(get(url, "/api/v1/ledgers/nosuch/blocks").0, 404);
    let path = format!("/api/v1/ledgers/{chain}/transactions/xyz");
    assert_eq!(code(get(url, &path)).0, 400);
    let path = format!("/api/v1/ledgers/{chain}/transactions/{}", "ab".repeat(32));
    assert_eq!(code(get(url, &path)).0, 404);
    let path = format!("/api/v1/ledgers/{chain}/accounts/nothex");
    assert_eq!(code(get(url, &path)).0, 400);
}

/// Blocks (paged and one) and accounts after sealing.
fn reads(url: &str, chain: &str, l: &Ledger, first: &Transaction) {
    let (status, page) = get(
        url,
        &format!("/api/v1/ledgers/{chain}/blocks?from=0&limit=1"),
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["blocks"].as_array().unwrap().len(), 1);
    assert_eq!(page["blocks"][0]["height"], 0);
    assert_eq!(page["next"], 1);
    let (_, all) = get(url, &format!("/api/v1/ledgers/{chain}/blocks"));
    let blocks = all["blocks"].as_array().unwrap();
    assert!(blocks.len() >= 2, "{all}");
    assert_eq!(all["next"], Value::Null);
    let holds_first = blocks.iter().any(|b| {
        b["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == kchain_core::to_hex(first.id()))
    });
    assert!(holds_first, "{all}");
    let (status, one) = get(url, &format!("/api/v1/ledgers/{chain}/blocks/1"));
    assert_eq!((status, one["height"].as_u64()), (200, Some(1)), "{one}");
    assert_eq!(one["hash"], blocks[1]["hash"]);
    let tip = blocks.len();
    assert_eq!(
        get(url, &format!("/api/v1/ledgers/{chain}/blocks/{tip}")).0,
        404
    );
    assert_eq!(
        get(url, &format!("/api/v1/ledgers/{chain}/blocks?limit=0")).0,
        400
    );

    let account = |key: &WriterKey| {
        let path = format!("/api/v1/ledgers/{chain}/accounts/{}", Address::of(key));
        let (status, v) = get(url, &path);
        assert_eq!(status, 200, "{v}");
        v
    };
    let alice = account(&l.alice);
    assert_eq!(
        (alice["balance"].as_u64(), alice["nonce"].as_u64()),
        (Some(985), Some(2))
    );
    let bob = account(&l.bob);
    assert_eq!(
        (bob["balance"].as_u64(), bob["nonce"].as_u64()),
        (Some(15), Some(0))
    );
}

/// A ledger whose stored block was edited afterwards (copied, edited, into a fresh data
/// directory): `/verify` answers the finding with exit 3, the reads say they are as of the
/// height before it, no proof is given, and `/metrics` counts the finding.
#[test]
fn a_tampered_ledger_is_reported_over_http() {
    let k = Env::new();
    let chain = "bank";
    let l = ledger(&k, chain);
    let id = l.genesis.chain_id();
    let bob = Address::of(&l.bob);
    let first = Transaction::transfer(&l.alice, id, bob, 10, 1);
    let second = Transaction::transfer(&l.alice, id, bob, 5, 2);
    kchain_ledger::submit(
        &EmbeddedLog::open(k.data(), EmbeddedOptions::default()).unwrap(),
        &l.genesis,
        &[first.clone(), second],
    )
    .unwrap();
    seal_blocks_of(&k, chain, &l.sealer_key, 1);

    let tampered = Env::new();
    {
        let src = EmbeddedLog::open(k.data(), EmbeddedOptions::default()).unwrap();
        let dst = EmbeddedLog::create(tampered.data(), EmbeddedOptions::default()).unwrap();
        kchain_topic::tamper::copy_topic_with(
            &src,
            &dst,
            &l.genesis.topics.blocks,
            |_, records| {
                let r = &mut records[1];
                let mut v: Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
                v["transactions"][0]["tx"]["amount"] = 900.into();
                r.value = Some(serde_json::to_vec(&v).unwrap());
            },
        )
        .unwrap();
    }
    let server = serve(&tampered, chain);
    let url = server.url.clone();
    let (status, report) = get(&url, &format!("/api/v1/ledgers/{chain}/verify"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["ok"].as_bool(), report["exit"].as_u64()),
        (Some(false), Some(3))
    );
    assert_eq!(report["finding"]["kind"], "body_mismatch", "{report}");
    assert_eq!(report["finding"]["offset"], 1, "{report}");
    let path = format!("/api/v1/ledgers/{chain}/accounts/{}", Address::of(&l.alice));
    let (status, account) = get(&url, &path);
    assert_eq!(status, 200);
    assert_eq!(
        (account["balance"].as_u64(), account["height"].as_u64()),
        (Some(1000), Some(0))
    );
    assert!(
        account["finding"]
            .as_str()
            .unwrap()
            .contains("body_mismatch"),
        "{account}"
    );
    let path = format!(
        "/api/v1/ledgers/{chain}/transactions/{}/proof",
        kchain_core::to_hex(first.id())
    );
    assert_eq!(get(&url, &path).0, 409);
    let page = text(&url, "/metrics");
    assert!(
        page.contains("kchain_findings_total{kind=\"body_mismatch\"}"),
        "{page}"
    );
    assert_eq!(server.stop(), Some(0), "kchain serve after SIGTERM");
}

/// The same ledger routes on Kafka: a submission as raw bytes and one as JSON, sealed by a
/// sealer process, read back, and verified.
#[cfg(feature = "kafka")]
#[test]
fn ledger_over_http_on_kafka() {
    let brokers = kchain_testkit::Broker::shared().brokers.clone();
    let k = Env::kafka(&brokers);
    let chain = kchain_testkit::unique_name("serve-ledger");
    let l = ledger(&k, &chain);
    let server = serve(&k, &chain);
    let url = server.url.clone();
    let id = l.genesis.chain_id();
    let bob = Address::of(&l.bob);
    let first = Transaction::transfer(&l.alice, id, bob, 10, 1);
    let second = Transaction::transfer(&l.alice, id, bob, 5, 2);
    let r = post_tx(
        &url,
        &chain,
        Some(TOKEN),
        "application/octet-stream",
        &raw(&first),
    );
    assert_eq!(r.0, 202, "{}", r.1);
    let r = post_tx(
        &url,
        &chain,
        Some(TOKEN),
        "application/json",
        &second.to_json(),
    );
    assert_eq!(r.0, 202, "{}", r.1);
    let r = post_tx(&url, &chain, None, "application/json", &second.to_json());
    assert_eq!(r.0, 401);
    let path = |t: &Transaction| {
        format!(
            "/api/v1/ledgers/{chain}/transactions/{}",
            kchain_core::to_hex(t.id())
        )
    };
    assert_eq!(get(&url, &path(&second)).1["status"], "pending");
    seal(&k, &chain, &l.sealer_key);
    for t in [&first, &second] {
        let (status, body) = get(&url, &path(t));
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("sealed")),
            "{body}"
        );
    }
    reads(&url, &chain, &l, &first);
    let (status, report) = get(&url, &format!("/api/v1/ledgers/{chain}/verify"));
    assert_eq!(
        (status, report["exit"].as_u64()),
        (200, Some(0)),
        "{report}"
    );
    assert_eq!(server.stop(), Some(0), "kchain serve after SIGTERM");
}
