//! The signer reproduces every reference vector (made with Python's eth_account) byte for byte.

use flashmm_venue::citrex::eip712::{
    decode_hex, encode_hex, recover, Address, Domain, Message, Order, Signer,
};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/vectors/citrex-eip712.json"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

fn hex32(v: &Value) -> String {
    format!("0x{}", v.as_str().unwrap().trim_start_matches("0x"))
}

fn message(v: &Value) -> Message {
    let m = &v["message"];
    let account = Address::parse(m["account"].as_str().unwrap()).unwrap();
    let sub = m["subAccountId"].as_u64().unwrap() as u8;
    match v["primary_type"].as_str().unwrap() {
        "Order" => Message::Order(Order {
            account,
            sub_account_id: sub,
            product_id: m["productId"].as_u64().unwrap() as u32,
            is_buy: m["isBuy"].as_bool().unwrap(),
            order_type: m["orderType"].as_u64().unwrap() as u8,
            time_in_force: m["timeInForce"].as_u64().unwrap() as u8,
            expiration: m["expiration"].as_u64().unwrap(),
            price: m["price"].as_str().unwrap().parse().unwrap(),
            quantity: m["quantity"].as_str().unwrap().parse().unwrap(),
            nonce: m["nonce"].as_u64().unwrap(),
        }),
        "CancelOrder" => Message::CancelOrder {
            account,
            sub_account_id: sub,
            product_id: m["productId"].as_u64().unwrap() as u32,
            order_id: m["orderId"].as_str().unwrap().into(),
        },
        "CancelOrders" => Message::CancelOrders {
            account,
            sub_account_id: sub,
            product_id: m["productId"].as_u64().unwrap() as u32,
        },
        "SignedAuthentication" => Message::SignedAuthentication {
            account,
            sub_account_id: sub,
        },
        other => panic!("unknown type {other}"),
    }
}

#[test]
fn all_24_vectors_byte_for_byte() {
    let vs = vectors();
    assert_eq!(vs.len(), 24);
    for v in &vs {
        let d = &v["domain"];
        let domain = Domain {
            name: d["name"].as_str().unwrap().into(),
            version: d["version"].as_str().unwrap().into(),
            chain_id: d["chainId"].as_u64().unwrap(),
            verifying_contract: Address::parse(d["verifyingContract"].as_str().unwrap()).unwrap(),
        };
        let m = message(v);
        let what = format!("{} {} {}", v["network"], v["primary_type"], v["key_label"]);
        assert_eq!(
            format!("0x{}", encode_hex(&domain.separator())),
            hex32(&v["domain_separator"]),
            "{what}"
        );
        assert_eq!(
            format!("0x{}", encode_hex(&m.struct_hash())),
            hex32(&v["struct_hash"]),
            "{what}"
        );
        let digest = m.digest(&domain);
        assert_eq!(
            format!("0x{}", encode_hex(&digest)),
            hex32(&v["digest"]),
            "{what}"
        );
        let signer = Signer::from_hex(v["private_key"].as_str().unwrap()).unwrap();
        assert_eq!(
            signer.address().checksummed(),
            v["address"].as_str().unwrap(),
            "{what}"
        );
        let sig = signer.sign(&m, &domain);
        assert_eq!(
            format!("0x{}", encode_hex(&sig)),
            v["signature"].as_str().unwrap().to_lowercase(),
            "{what}"
        );
        // And a venue recovers the signer from it.
        assert_eq!(recover(&digest, &sig).unwrap(), signer.address());
        let mut forged = sig;
        forged[10] ^= 1;
        assert_ne!(recover(&digest, &forged).ok(), Some(signer.address()));
    }
}

#[test]
fn bad_keys_and_signatures_are_errors() {
    assert!(Signer::from_hex("0x1234").is_err());
    assert!(Signer::from_hex(&format!("0x{}", "00".repeat(32))).is_err());
    assert!(recover(&[0u8; 32], &[0u8; 10]).is_err());
    assert_eq!(decode_hex("0xzz"), None);
    let s = Signer::from_hex("0x36f973d09569752528d6d2033f635b57dad67d3c3d1a42cb196010b266d52c4f")
        .unwrap();
    assert!(
        !format!("{s:?}").contains("36f973d0"),
        "Debug must not print the key"
    );
}
