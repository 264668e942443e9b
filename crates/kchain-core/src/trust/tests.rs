//! Tests of the trust file: parsing, policies and lossless rewriting.

use super::*;
use crate::checkpoint::{Checkpoint, Cosigner, PolicyError};
use crate::keys::WriterKey;
use crate::merkle;

/// The checkpoint half of trust file text.
fn checkpoints(text: &str) -> Result<Option<CheckpointTrust>, TrustError> {
    TrustFile::from_toml(text).map(|f| f.checkpoints)
}

const WRITER: &str = "[[writer]]\nname = \"acme\"\npublic_key = \"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\"\n";

#[test]
fn trust_files_without_checkpoint_tables_are_unchanged() {
    let trust = Trust::from_toml(WRITER).unwrap();
    assert_eq!(trust.writers.len(), 1);
    assert_eq!(checkpoints(WRITER).unwrap(), None);
}

#[test]
fn witnesses_and_policy_build_a_policy_per_partition() {
    let writer = WriterKey::from_seed("acme", [1; 32]);
    let w1 = Cosigner::from_seed("w1.example", [2; 32]).unwrap();
    let text = format!(
        "{WRITER}\n[[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 1\nnamespace = \"ex.com\"\n",
        w1.verifier().to_vkey()
    );
    let trust = Trust::from_toml(&text).unwrap();
    assert_eq!(trust.writers[0].key, writer.public());
    let ct = checkpoints(&text).unwrap().unwrap();
    assert_eq!((ct.threshold, ct.witnesses.len()), (1, 1));
    assert_eq!(ct.origin("orders", 3), "ex.com/orders/3");

    let policy = ct.policy(&trust, "orders", 3).unwrap();
    let mut note = Checkpoint::new("ex.com/orders/3", 1, merkle::leaf_hash(&[0; 32]))
        .unwrap()
        .sign(&writer.note_signer().unwrap());
    assert!(matches!(
        policy.check(&note),
        Err(PolicyError::NotEnoughCosignatures { .. })
    ));
    assert!(ct
        .writer_policy(&trust, "orders", 3)
        .unwrap()
        .check(&note)
        .is_ok());
    note.add_signature(w1.cosign(note.text(), 1).to_note_signature());
    assert!(policy.check(&note).is_ok());
    assert!(matches!(
        ct.policy(&trust, "orders", 4).unwrap().check(&note),
        Err(PolicyError::WrongOrigin { .. })
    ));
}

#[test]
fn bad_checkpoint_tables_are_refused() {
    let bad_key = format!("{WRITER}[[witness]]\nkey = \"nope\"\n");
    assert!(matches!(
        checkpoints(&bad_key),
        Err(TrustError::BadWitnessKey { .. })
    ));
    let too_many = format!("{WRITER}[policy]\nwitnesses = 1\n");
    assert!(matches!(
        checkpoints(&too_many),
        Err(TrustError::Policy(PolicyError::ThresholdTooHigh { .. }))
    ));
    let unknown = format!("{WRITER}[policy]\nquorum = 1\n");
    assert!(checkpoints(&unknown).is_err());
    let spaced = "[[writer]]\nname = \"acme orders\"\npublic_key = \"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\"\n[policy]\n";
    let ct = checkpoints(spaced).unwrap().unwrap();
    let trust = Trust::from_toml(spaced).unwrap();
    assert!(matches!(
        ct.policy(&trust, "orders", 0),
        Err(TrustError::BadWriterName { .. })
    ));
}

#[test]
fn rewriting_a_trust_file_keeps_its_witnesses_and_policy() {
    let w = Cosigner::from_seed("w1.example", [3; 32]).unwrap();
    let text = format!(
        "{WRITER}\n[[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 1\nnamespace = \"ex.com\"\n",
        w.verifier().to_vkey()
    );
    let before = checkpoints(&text).unwrap().unwrap();
    let mut trust = Trust::from_toml(&text).unwrap();
    trust.pins.push(Pin {
        topic: "orders".into(),
        partition: 0,
        genesis: Some([1; 32]),
        tip: None,
        log: None,
    });
    trust.set_topic_pin("orders", 3);
    let rewritten = trust.to_toml_keeping(&text).unwrap();
    assert_eq!(Trust::from_toml(&rewritten).unwrap(), trust);
    assert_eq!(checkpoints(&rewritten).unwrap().unwrap(), before);
    assert!(checkpoints(&trust.to_toml()).unwrap().is_none());
    assert!(trust.to_toml_keeping("[[writer]]\nname = 1\n").is_err());
}

#[test]
fn pinned_partitions_count_the_shape_and_every_pinned_partition() {
    let mut trust = Trust::from_toml(WRITER).unwrap();
    assert_eq!(trust.pinned_partitions("orders"), None);
    trust.set_pin(Pin {
        topic: "orders".into(),
        partition: 4,
        genesis: None,
        tip: None,
        log: None,
    });
    assert_eq!(trust.pinned_partitions("orders"), Some(5));
    trust.set_topic_pin("orders", 8);
    assert_eq!(trust.pinned_partitions("orders"), Some(8));
    // A later pin of fewer partitions does not forget the ones pinned before.
    trust.set_topic_pin("orders", 2);
    assert_eq!(trust.pinned_partitions("orders"), Some(8));
    assert_eq!(trust.pinned_partitions("other"), None);
    let text = trust.to_toml();
    assert!(text.contains("[[topic]]"), "{text}");
    assert_eq!(Trust::from_toml(&text).unwrap(), trust);
}

#[test]
fn a_trust_file_round_trips_whole() {
    let w = Cosigner::from_seed("w1.example", [3; 32]).unwrap();
    let text = format!(
        "{WRITER}[[pin]]\ntopic = \"orders\"\npartition = 1\ngenesis = \"{}\"\n\
         [[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 1\n\
         [[ledger]]\nchain = \"bank\"\nfuture = [1, 2]\n",
        "ab".repeat(32),
        w.verifier().to_vkey()
    );
    let file = TrustFile::from_toml(&text).unwrap();
    assert_eq!(file.trust.pins.len(), 1);
    assert_eq!(file.checkpoints.as_ref().unwrap().namespace, "kchain");
    assert_eq!(file.ledgers.len(), 1);
    assert_eq!(TrustFile::from_toml(&file.to_toml()).unwrap(), file);
    assert!(!file.to_toml().contains("namespace"), "{}", file.to_toml());
    assert_eq!(
        file.policy("orders", 1).unwrap().origin(),
        Some("kchain/orders/1")
    );
    assert_eq!(
        TrustFile::from_toml(WRITER)
            .unwrap()
            .policy("orders", 1)
            .unwrap()
            .threshold(),
        0
    );
}

#[test]
fn pins_apply_only_on_the_log_they_were_taken_on() {
    let pin = |partition, log: Option<&str>| Pin {
        topic: "orders".into(),
        partition,
        genesis: Some([partition as u8; 32]),
        tip: None,
        log: log.map(str::to_owned),
    };
    let mut trust = Trust::default();
    trust.set_pin(pin(0, None));
    trust.set_pin(pin(1, None));
    trust.set_topic_pin("orders", 2);
    trust.set_pin(pin(0, Some("embedded:/x")));
    trust.set_topic_pin_on("orders", 3, Some("embedded:/x"));
    // The pin of the embedded log supersedes the old one of partition 0; partition 1 keeps
    // its old pin, which applies everywhere.
    assert_eq!(trust.pins.len(), 2);
    let embedded = trust.on_log("embedded:/x");
    assert_eq!(embedded.pins.len(), 2);
    assert_eq!(embedded.pinned_partitions("orders"), Some(3));
    let kafka = trust.on_log("kafka:c1");
    assert_eq!(kafka.pins, vec![pin(1, None)]);
    assert_eq!(kafka.pinned_partitions("orders"), Some(2));
    assert_eq!(
        trust.pinned_elsewhere("orders", "kafka:c1"),
        ["embedded:/x"]
    );
    assert!(trust.pinned_elsewhere("orders", "embedded:/x").is_empty());
    assert!(trust.pinned_on_any_log("orders"));
    trust.set_pin(pin(0, Some("kafka:c1")));
    assert_eq!(
        trust.on_log("kafka:c1").pin("orders", 0),
        Some(&pin(0, Some("kafka:c1")))
    );
    let text = trust.to_toml();
    assert!(text.contains("log = \"kafka:c1\""));
    assert_eq!(Trust::from_toml(&text).unwrap(), trust);
}

#[test]
fn witness_urls_are_read_checked_and_written_back() {
    let w1 = Cosigner::from_seed("w1.example", [4; 32]).unwrap();
    let w2 = Cosigner::from_seed("w2.example", [5; 32]).unwrap();
    let text = format!(
        "{WRITER}[[witness]]\nkey = \"{}\"\nurl = \"https://w1.example:8443\"\n\
         [[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 1\n",
        w1.verifier().to_vkey(),
        w2.verifier().to_vkey()
    );
    let file = TrustFile::from_toml(&text).unwrap();
    let ct = file.checkpoints.clone().unwrap();
    assert_eq!(ct.witnesses.len(), 2);
    assert_eq!(
        ct.endpoints,
        vec![WitnessEndpoint {
            key: w1.verifier(),
            url: "https://w1.example:8443".into()
        }]
    );
    assert_eq!(TrustFile::from_toml(&file.to_toml()).unwrap(), file);
    for bad in ["ftp://w1", "https://", "w1.example", "http://a b"] {
        let text = format!(
            "{WRITER}[[witness]]\nkey = \"{}\"\nurl = \"{bad}\"\n",
            w1.verifier().to_vkey()
        );
        let err = checkpoints(&text).unwrap_err().to_string();
        assert!(
            err.contains("not an http:// or https:// URL"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn max_age_is_read_and_written_back() {
    let text = format!("{WRITER}[policy]\nmax_age = 3600\n");
    let file = TrustFile::from_toml(&text).unwrap();
    assert_eq!(file.checkpoints.as_ref().unwrap().max_age, Some(3600));
    assert!(file.to_toml().contains("max_age = 3600"));
    assert_eq!(TrustFile::from_toml(&file.to_toml()).unwrap(), file);
    let none = checkpoints(&format!("{WRITER}[policy]\nwitnesses = 0\n")).unwrap();
    assert_eq!(none.unwrap().max_age, None);
}

#[test]
fn a_topic_entry_names_the_chain_its_topic_is_held_under() {
    let text = format!("{WRITER}[[topic]]\nname = \"orders-restored\"\nchain = \"orders\"\n");
    let file = TrustFile::from_toml(&text).unwrap();
    let trust = &file.trust;
    assert_eq!(trust.chain_name("orders-restored"), "orders");
    assert_eq!(trust.chain_name("orders"), "orders");
    // An entry that only names the chain pins no partition count.
    assert_eq!(trust.pinned_partitions("orders-restored"), None);
    assert_eq!(TrustFile::from_toml(&file.to_toml()).unwrap(), file);

    // Pinning the topic keeps its chain name; clearing it keeps the pinned count.
    let mut trust = trust.clone();
    trust.set_topic_pin_on("orders-restored", 3, Some("embedded:/d"));
    assert_eq!(
        trust.on_log("embedded:/d").chain_name("orders-restored"),
        "orders"
    );
    trust.set_chain_name("orders-restored", None);
    assert_eq!(trust.chain_name("orders-restored"), "orders-restored");
    assert_eq!(trust.pinned_partitions("orders-restored"), Some(3));
    assert!(!trust.to_toml().contains("chain ="));
    // Without a pinned count, clearing leaves no entry at all.
    let mut bare = Trust::default();
    bare.set_chain_name("mirror", Some("orders"));
    assert_eq!(bare.chain_name("mirror"), "orders");
    bare.set_chain_name("mirror", None);
    assert!(bare.topics.is_empty());
}
