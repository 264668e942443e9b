//! Property tests of encrypted values and the keyring: sealing round-trips anywhere and opens
//! nowhere else; the keyring text round-trips; and the decoders (keyring text, `kchain.enc`
//! header, sealed values) never panic on any input.

use kchain_core::{
    decrypt_record, parse_enc_header, ChainId, DataKey, DataKeyId, Decryption, Keyring,
    RecordPlace, H_ENC,
};
use proptest::prelude::*;

fn arb_place() -> impl Strategy<Value = RecordPlace> {
    (any::<[u8; 16]>(), any::<u32>(), any::<u64>()).prop_map(|(c, partition, height)| RecordPlace {
        chain: ChainId(c),
        partition,
        height,
    })
}

fn arb_key() -> impl Strategy<Value = DataKey> {
    (any::<[u8; 8]>(), any::<i64>(), any::<[u8; 32]>())
        .prop_map(|(id, created, secret)| DataKey::from_secret(DataKeyId(id), created, &secret))
}

proptest! {
    #[test]
    fn sealed_values_open_at_their_place_only(
        key in arb_key(),
        place in arb_place(),
        other in arb_place(),
        nonce in any::<[u8; 12]>(),
        plain in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let sealed = key.seal(&place, nonce, &plain);
        prop_assert_eq!(sealed.len(), plain.len() + 28);
        prop_assert_eq!(key.open(&place, &sealed).unwrap(), plain.clone());
        let mut in_place = plain.clone();
        key.seal_in_place(&place, nonce, &mut in_place);
        prop_assert_eq!(&in_place, &sealed);
        if other != place {
            prop_assert!(key.open(&other, &sealed).is_err());
        }
    }

    #[test]
    fn keyring_text_round_trips(
        keys in proptest::collection::vec((arb_key(), proptest::option::of(any::<i64>())), 0..6),
    ) {
        let mut ring = Keyring::default();
        let mut ids = std::collections::HashSet::new();
        for (k, shred_at) in keys {
            let id = k.id();
            if !ids.insert(id) {
                continue;
            }
            ring.add(k).unwrap();
            if let Some(at) = shred_at {
                prop_assert!(ring.shred(id, at).unwrap());
            }
        }
        let text = ring.to_toml();
        let back = Keyring::from_toml(&text).unwrap();
        prop_assert_eq!(back.to_toml(), text);
        prop_assert_eq!(back.newest().map(DataKey::id), ring.newest().map(DataKey::id));
    }

    #[test]
    fn keyring_parser_never_panics(text in "\\PC*") {
        let _ = Keyring::from_toml(&text);
    }

    #[test]
    fn keyring_parser_never_panics_on_near_misses(
        id in "[0-9a-fA-Fx]{0,20}",
        secret in "[A-Za-z0-9+/=_-]{0,60}",
        created in "-?[0-9]{0,22}|\"[0-9]*\"",
        shredded in proptest::option::of("-?[0-9]{0,22}"),
    ) {
        let mut text = format!(
            "kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"{id}\"\nsecret = \"{secret}\"\ncreated_ms = {created}\n"
        );
        if let Some(s) = shredded {
            text += &format!("shredded_ms = {s}\n");
        }
        if let Err(e) = Keyring::from_toml(&text) {
            // Whatever is wrong, the message never quotes the secret.
            if secret.len() >= 8 {
                prop_assert!(!e.to_string().contains(&secret), "{}", e);
            }
        }
    }

    #[test]
    fn decrypting_never_panics(
        key in arb_key(),
        place in arb_place(),
        header in proptest::collection::vec(any::<u8>(), 0..40),
        value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
    ) {
        let _ = parse_enc_header(&header);
        let mut ring = Keyring::default();
        ring.add(key.clone()).unwrap();
        let headers = [(H_ENC, &header[..])];
        let d = decrypt_record(&ring, &place, value.as_deref(), headers.iter().copied());
        // Random bytes never authenticate.
        let readable = matches!(d, Decryption::Decrypted { .. } | Decryption::Plain);
        prop_assert!(!readable, "{:?}", d);
        // A well-formed header over random bytes is a failure under that key, never garbage.
        let good = key.header_value();
        let headers = [(H_ENC, &good[..])];
        let d = decrypt_record(&ring, &place, value.as_deref(), headers.iter().copied());
        prop_assert!(
            matches!(&d, Decryption::Failed { key: Some(k), .. } if *k == key.id()),
            "{:?}", d
        );
    }
}
