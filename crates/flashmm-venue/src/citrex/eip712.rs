//! EIP-712 typed-data signing for Citrex ("ciao" domain): the four message types the venue
//! takes, hashed and signed exactly as eth_account does (keccak256, secp256k1 with RFC 6979
//! deterministic nonces and low s, a 65-byte r || s || v signature with v = 27 or 28).

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    #[error("not a secp256k1 private key (expected 32 bytes of hex)")]
    BadKey,
    #[error("{0:?} is not a 20-byte hex address")]
    BadAddress(String),
    #[error("not a 65-byte signature")]
    BadSignature,
}

pub fn keccak(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Keccak256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 20]);

impl Address {
    pub fn parse(s: &str) -> Result<Address, SignError> {
        let hex = s.trim().strip_prefix("0x").unwrap_or(s.trim());
        let bytes = decode_hex(hex)
            .filter(|b| b.len() == 20)
            .ok_or_else(|| SignError::BadAddress(s.to_string()))?;
        let mut a = [0u8; 20];
        a.copy_from_slice(&bytes);
        Ok(Address(a))
    }

    /// EIP-55 mixed-case checksum form.
    pub fn checksummed(&self) -> String {
        let lower = encode_hex(&self.0);
        let hash = keccak(&[lower.as_bytes()]);
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            out.push(if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
        out
    }

    fn word(&self) -> [u8; 32] {
        let mut w = [0u8; 32];
        w[12..].copy_from_slice(&self.0);
        w
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.checksummed())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.checksummed())
    }
}

pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn encode_hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

fn uint(v: u128) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[16..].copy_from_slice(&v.to_be_bytes());
    w
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub version: String,
    pub chain_id: u64,
    pub verifying_contract: Address,
}

impl Domain {
    pub fn separator(&self) -> [u8; 32] {
        let type_hash = keccak(&[
            b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
        ]);
        keccak(&[
            &type_hash,
            &keccak(&[self.name.as_bytes()]),
            &keccak(&[self.version.as_bytes()]),
            &uint(self.chain_id as u128),
            &self.verifying_contract.word(),
        ])
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub account: Address,
    pub sub_account_id: u8,
    pub product_id: u32,
    pub is_buy: bool,
    pub order_type: u8,
    pub time_in_force: u8,
    pub expiration: u64,
    /// x 1e18.
    pub price: u128,
    /// x 1e18.
    pub quantity: u128,
    pub nonce: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Order(Order),
    CancelOrder {
        account: Address,
        sub_account_id: u8,
        product_id: u32,
        order_id: String,
    },
    CancelOrders {
        account: Address,
        sub_account_id: u8,
        product_id: u32,
    },
    SignedAuthentication {
        account: Address,
        sub_account_id: u8,
    },
}

impl Message {
    pub fn struct_hash(&self) -> [u8; 32] {
        match self {
            Message::Order(o) => keccak(&[
                &keccak(&[b"Order(address account,uint8 subAccountId,uint32 productId,bool isBuy,uint8 orderType,uint8 timeInForce,uint64 expiration,uint128 price,uint128 quantity,uint64 nonce)"]),
                &o.account.word(),
                &uint(o.sub_account_id as u128),
                &uint(o.product_id as u128),
                &uint(o.is_buy as u128),
                &uint(o.order_type as u128),
                &uint(o.time_in_force as u128),
                &uint(o.expiration as u128),
                &uint(o.price),
                &uint(o.quantity),
                &uint(o.nonce as u128),
            ]),
            Message::CancelOrder { account, sub_account_id, product_id, order_id } => keccak(&[
                &keccak(&[b"CancelOrder(address account,uint8 subAccountId,uint32 productId,string orderId)"]),
                &account.word(),
                &uint(*sub_account_id as u128),
                &uint(*product_id as u128),
                &keccak(&[order_id.as_bytes()]),
            ]),
            Message::CancelOrders { account, sub_account_id, product_id } => keccak(&[
                &keccak(&[b"CancelOrders(address account,uint8 subAccountId,uint32 productId)"]),
                &account.word(),
                &uint(*sub_account_id as u128),
                &uint(*product_id as u128),
            ]),
            Message::SignedAuthentication { account, sub_account_id } => keccak(&[
                &keccak(&[b"SignedAuthentication(address account,uint8 subAccountId)"]),
                &account.word(),
                &uint(*sub_account_id as u128),
            ]),
        }
    }

    pub fn digest(&self, domain: &Domain) -> [u8; 32] {
        keccak(&[&[0x19, 0x01], &domain.separator(), &self.struct_hash()])
    }
}

/// A private key. No `Display`; `Debug` shows only the address it signs for.
pub struct Signer {
    key: SigningKey,
    address: Address,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Signer({})", self.address)
    }
}

fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let hash = keccak(&[&point.as_bytes()[1..]]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&hash[12..]);
    Address(a)
}

impl Signer {
    pub fn from_hex(hex: &str) -> Result<Signer, SignError> {
        let bytes = decode_hex(hex.trim())
            .filter(|b| b.len() == 32)
            .ok_or(SignError::BadKey)?;
        let key = SigningKey::from_slice(&bytes).map_err(|_| SignError::BadKey)?;
        let address = address_of(key.verifying_key());
        Ok(Signer { key, address })
    }

    pub fn address(&self) -> Address {
        self.address
    }

    /// r || s || v, v = 27 or 28.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> [u8; 65] {
        let mut out = [0u8; 65];
        // Signing a 32-byte prehash with a valid key cannot fail; a zeroed signature would be
        // refused by the venue, never accepted.
        if let Ok((sig, recid)) = self.key.sign_prehash_recoverable(digest) {
            out[..64].copy_from_slice(&sig.to_bytes());
            out[64] = 27 + recid.to_byte();
        }
        out
    }

    pub fn sign(&self, message: &Message, domain: &Domain) -> [u8; 65] {
        self.sign_digest(&message.digest(domain))
    }
}

/// The address that signed `digest`, as a venue checks it.
pub fn recover(digest: &[u8; 32], signature: &[u8]) -> Result<Address, SignError> {
    if signature.len() != 65 {
        return Err(SignError::BadSignature);
    }
    let sig = Signature::from_slice(&signature[..64]).map_err(|_| SignError::BadSignature)?;
    let v = signature[64];
    let recid = RecoveryId::from_byte(v.wrapping_sub(27)).ok_or(SignError::BadSignature)?;
    let key = VerifyingKey::recover_from_prehash(digest, &sig, recid)
        .map_err(|_| SignError::BadSignature)?;
    Ok(address_of(&key))
}
