//! Test support shared by steadfast's crates, so that each helper exists once: the
//! seeded PRNG every randomized test draws from, hex for test vectors, and
//! self-signed certificates. A dev-dependency only; nothing here reaches a build of
//! the libraries.

#![forbid(unsafe_code)]

pub mod metrics;

/// SplitMix64: small, fast and deterministic, so a failing seed can be replayed.
/// Not for anything that needs unpredictability.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator that starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// An index into a collection of `len` items (`len` > 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, or `None` when there are none.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.index(items.len())])
    }

    /// A reference to one of `items` (not empty).
    pub fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes a hex string spells; white space is ignored, so test vectors can be
/// written as the RFCs print them. Panics on anything else: test data is trusted.
pub fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    assert!(
        digits.len().is_multiple_of(2),
        "odd number of hex digits in {s:?}"
    );
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ASCII");
            u8::from_str_radix(text, 16).unwrap_or_else(|_| panic!("not hex: {text:?}"))
        })
        .collect()
}

/// A self-signed leaf certificate (CA:FALSE) and its key.
#[derive(Debug)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, DER (PKCS#8).
    pub key_der: Vec<u8>,
}

/// A self-signed leaf certificate for `names` (DNS names or IP addresses).
pub fn self_signed(names: &[&str]) -> SelfSigned {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let cert = rcgen::generate_simple_self_signed(names).expect("rcgen makes a certificate");
    SelfSigned {
        cert_pem: cert.cert.pem(),
        key_pem: cert.key_pair.serialize_pem(),
        cert_der: cert.cert.der().to_vec(),
        key_der: cert.key_pair.serialize_der(),
    }
}

/// A test certificate authority and a server certificate it signed, as grpc's
/// interop tests have (`ca.pem`, `server1.pem`, `server1.key`), made fresh each time
/// so that no private key is committed.
#[derive(Debug)]
pub struct TestCa {
    /// The CA's certificate (CA:TRUE), PEM: what a client trusts.
    pub ca_pem: String,
    /// The server's certificate, signed by the CA, PEM.
    pub server_cert_pem: String,
    /// The server's private key, PEM (PKCS#8).
    pub server_key_pem: String,
}

/// A fresh CA and a server certificate for `names` (DNS names or IP addresses)
/// signed by it.
pub fn test_ca(names: &[&str]) -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

    let ca_key = KeyPair::generate().expect("rcgen makes a key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("no names is valid");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "steadfast test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("rcgen signs the CA");

    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let server_key = KeyPair::generate().expect("rcgen makes a key");
    let mut server = CertificateParams::new(names).expect("valid names");
    server
        .distinguished_name
        .push(DnType::CommonName, "steadfast test server");
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .expect("rcgen signs the server certificate");
    TestCa {
        ca_pem: ca_cert.pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_spreads() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        let mut r = Rng::new(1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[r.index(10)] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(r.bytes(13).len(), 13);
    }

    #[test]
    fn hex_round_trips_and_ignores_white_space() {
        assert_eq!(unhex("82 86\n84"), [0x82, 0x86, 0x84]);
        assert_eq!(hex(&unhex("deadBEEF")), "deadbeef");
    }
}
