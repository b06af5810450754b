//! Ed25519 signatures over rule builds: keys, signing, and the trusted-key check made before a rule is loaded.
//!
//! Keys and signatures are short lines of text, so that they can sit in
//! configuration files and next to the rule files they vouch for:
//!
//! * a public key is `ed25519:<64 hex digits>`;
//! * a secret key is `ed25519-secret:<64 hex digits of the 32-byte seed>`;
//! * a signature (the content of `<rule>.wasm.sig`) is
//!   `ed25519:<key id>:<128 hex digits>`.
//!
//! A key id is the first 16 hex digits of the sha256 of the public key's 32
//! bytes. It names the key in signatures, errors and audit records without
//! spelling out the whole key.
//!
//! What is signed is a fixed domain tag followed by the sha256 of the wasm
//! bytes: the tag keeps a rule signature from being mistaken for a signature
//! over anything else made with the same key, and the digest binds it to the
//! exact build.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The domain tag signed ahead of the wasm digest. A new signing scheme
/// gets a new tag, so that old signatures can never pass under it.
const DOMAIN: &[u8] = b"enforcer-rule-signature-v1\n";

/// The prefix of public keys and signatures.
const PUBLIC_PREFIX: &str = "ed25519:";

/// The prefix of secret keys. It differs from the public one so that a
/// secret key pasted where a public key belongs is caught, not trusted.
const SECRET_PREFIX: &str = "ed25519-secret:";

/// Hex digits in a key id.
const KEY_ID_DIGITS: usize = 16;

/// What the expected shape of each text is, quoted in error messages.
const PUBLIC_SHAPE: &str = "expected `ed25519:<64 hex digits>`";
const SECRET_SHAPE: &str = "expected `ed25519-secret:<64 hex digits>`";
const SIGNATURE_SHAPE: &str = "expected `ed25519:<key id>:<128 hex digits>`";

/// Why a key could not be made or read, or a rule could not be signed or
/// did not pass the signature check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The rule has no signature, and trusted keys are configured.
    #[error("the rule is unsigned: sign it with `enforcer plugin sign` using a trusted key")]
    Unsigned,
    /// A signature or key text is not in the expected format. The message
    /// says which text and what is wrong with it.
    #[error("malformed {0}")]
    Malformed(String),
    /// The signature names a key that is not trusted.
    #[error("signed by key {key_id}, which is not among the trusted keys")]
    UntrustedKey {
        /// The key id the signature names.
        key_id: String,
    },
    /// The signature names a trusted key but does not verify over these
    /// bytes.
    #[error(
        "the signature by key {key_id} does not match these bytes (sha256 {sha256}): \
         the rule was changed after signing or signed by another key"
    )]
    Mismatch {
        /// The key id the signature names.
        key_id: String,
        /// The sha256 of the bytes that were checked, in hex.
        sha256: String,
    },
    /// Signatures are to be checked but no key is trusted, so none can pass.
    #[error(
        "no trusted keys are configured: add the public key (`ed25519:<64 hex digits>`) \
         that signs the rules to the trusted keys"
    )]
    NoTrustedKeys,
    /// The operating system could not supply randomness for a new key.
    #[error("could not get randomness for a new key from the operating system: {0}")]
    Randomness(String),
}

/// A freshly generated key pair, as text.
#[derive(Clone)]
pub struct KeyPair {
    /// The secret key, `ed25519-secret:<64 hex digits>` and a newline: the
    /// content of a secret key file. Keep it out of configuration and logs.
    pub secret: String,
    /// The public key, `ed25519:<64 hex digits>`, to list among the trusted
    /// keys of the engines that should accept rules signed with the secret.
    pub public: String,
}

impl std::fmt::Debug for KeyPair {
    /// Leaves the secret out, so that a debug print cannot leak it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("secret", &"(redacted)")
            .field("public", &self.public)
            .finish()
    }
}

/// Generate a new key pair from the operating system's randomness.
pub fn generate_keypair() -> Result<KeyPair, SigningError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| SigningError::Randomness(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    Ok(KeyPair {
        secret: format!("{SECRET_PREFIX}{}\n", hex::encode(seed)),
        public: public_key_text(&key.verifying_key()),
    })
}

/// Sign a rule build with a secret key (the text of a secret key file).
/// Returns the signature text, newline-terminated, to store as
/// `<rule>.wasm.sig`.
pub fn sign(secret_key_text: &str, wasm: &[u8]) -> Result<String, SigningError> {
    let key = parse_secret(secret_key_text).map_err(|e| malformed("secret key", e))?;
    let signature = key.sign(&signed_message(&wasm_digest(wasm)));
    Ok(format!(
        "{PUBLIC_PREFIX}{}:{}\n",
        key_id(&key.verifying_key()),
        hex::encode(signature.to_bytes())
    ))
}

/// The key id of a public key: the first 16 hex digits of the sha256 of
/// its bytes.
pub fn key_id_of(public_key_text: &str) -> Result<String, SigningError> {
    parse_public(public_key_text)
        .map(|key| key_id(&key))
        .map_err(|e| malformed("public key", e))
}

/// The public keys whose signatures are accepted.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    /// Each key with its id. A list rather than a map: it is short, and two
    /// distinct keys sharing an id (a 64-bit collision) are both still tried.
    keys: Vec<(String, VerifyingKey)>,
}

impl TrustedKeys {
    /// Read a list of public key texts. A bad entry is refused with its
    /// index (counting from 0) and what is wrong with it; a key listed twice
    /// is kept once.
    pub fn parse(public_keys: &[String]) -> Result<Self, SigningError> {
        let mut keys: Vec<(String, VerifyingKey)> = Vec::with_capacity(public_keys.len());
        for (index, text) in public_keys.iter().enumerate() {
            let key = parse_public(text)
                .map_err(|e| malformed(&format!("trusted key at index {index}"), e))?;
            if !keys.iter().any(|(_, known)| *known == key) {
                keys.push((key_id(&key), key));
            }
        }
        Ok(TrustedKeys { keys })
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many distinct keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Check a rule build against its signature (the bytes of its `.sig`
    /// file, if it has one). Returns the id of the trusted key that signed
    /// it.
    pub fn verify(&self, wasm: &[u8], signature: Option<&[u8]>) -> Result<String, SigningError> {
        if self.is_empty() {
            return Err(SigningError::NoTrustedKeys);
        }
        let signature = signature.ok_or(SigningError::Unsigned)?;
        let (key_id, signature) =
            parse_signature(signature).map_err(|e| malformed("signature", e))?;
        let mut named = self.keys.iter().filter(|(id, _)| *id == key_id).peekable();
        if named.peek().is_none() {
            return Err(SigningError::UntrustedKey { key_id });
        }
        let digest = wasm_digest(wasm);
        let message = signed_message(&digest);
        // The strict check also refuses non-canonical signatures, so that a
        // signature has exactly one valid text.
        if named
            .into_iter()
            .any(|(_, key)| key.verify_strict(&message, &signature).is_ok())
        {
            return Ok(key_id);
        }
        Err(SigningError::Mismatch {
            key_id,
            sha256: hex::encode(digest),
        })
    }
}

/// A `Malformed` error naming which text is wrong.
fn malformed(what: &str, problem: String) -> SigningError {
    SigningError::Malformed(format!("{what}: {problem}"))
}

/// The sha256 of a rule build.
fn wasm_digest(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

/// The bytes a signature is made over: the domain tag and the build digest.
fn signed_message(digest: &[u8; 32]) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + digest.len());
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(digest);
    message
}

/// The key id of a public key.
fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut id = hex::encode(digest);
    id.truncate(KEY_ID_DIGITS);
    id
}

/// The text form of a public key.
fn public_key_text(key: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}", hex::encode(key.as_bytes()))
}

/// Read a public key text. The error says what is wrong.
fn parse_public(text: &str) -> Result<VerifyingKey, String> {
    let text = text.trim();
    if text.starts_with(SECRET_PREFIX) {
        return Err(format!(
            "{PUBLIC_SHAPE}, found a secret key: \
             trust its public key instead, and keep the secret one private"
        ));
    }
    let digits = text
        .strip_prefix(PUBLIC_PREFIX)
        .ok_or_else(|| format!("{PUBLIC_SHAPE}, found no `ed25519:` prefix"))?;
    let bytes: [u8; 32] = decode_hex(digits)?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "the 64 hex digits are not a valid ed25519 public key".to_string())?;
    // A small-order key would accept signatures anyone can forge.
    if key.is_weak() {
        return Err("a weak (small-order) ed25519 key, which cannot be trusted".into());
    }
    Ok(key)
}

/// Read a secret key text. The error says what is wrong, and never quotes
/// the text, which may be a real secret with a typo in it.
fn parse_secret(text: &str) -> Result<SigningKey, String> {
    let text = text.trim();
    let digits = text.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
        if text.starts_with(PUBLIC_PREFIX) {
            format!("{SECRET_SHAPE}, found a public key: signing needs the secret key file")
        } else {
            format!("{SECRET_SHAPE}, found no `ed25519-secret:` prefix")
        }
    })?;
    let seed: [u8; 32] = decode_hex(digits)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Read a signature text into the key id it names and the signature.
fn parse_signature(bytes: &[u8]) -> Result<(String, Signature), String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("{SIGNATURE_SHAPE}, found bytes that are not UTF-8 text"))?
        .trim();
    if text.is_empty() {
        return Err(format!("{SIGNATURE_SHAPE}, found an empty file"));
    }
    let rest = text
        .strip_prefix(PUBLIC_PREFIX)
        .ok_or_else(|| format!("{SIGNATURE_SHAPE}, found no `ed25519:` prefix"))?;
    let (key_id, digits) = rest
        .split_once(':')
        .ok_or_else(|| format!("{SIGNATURE_SHAPE}, found no key id (a public key, perhaps?)"))?;
    if key_id.len() != KEY_ID_DIGITS || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{SIGNATURE_SHAPE}: the key id must be {KEY_ID_DIGITS} hex digits"
        ));
    }
    let bytes: [u8; 64] = decode_hex(digits)?;
    Ok((key_id.to_ascii_lowercase(), Signature::from_bytes(&bytes)))
}

/// Decode exactly `N` bytes of hex, either case. The error names the first
/// character that is not a hex digit, or the count that is wrong.
fn decode_hex<const N: usize>(digits: &str) -> Result<[u8; N], String> {
    if let Some((position, c)) = digits
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_hexdigit())
    {
        return Err(format!("`{c}` at position {position} is not a hex digit"));
    }
    if digits.len() != 2 * N {
        return Err(format!(
            "expected {} hex digits, found {}",
            2 * N,
            digits.len()
        ));
    }
    let mut bytes = [0u8; N];
    hex::decode_to_slice(digits, &mut bytes).map_err(|e| format!("not hexadecimal: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &[u8] = b"\0asm\x01\0\0\0 a rule build, as far as signing cares";

    fn trusted(keys: &[&KeyPair]) -> TrustedKeys {
        let texts: Vec<String> = keys.iter().map(|k| k.public.clone()).collect();
        TrustedKeys::parse(&texts).unwrap()
    }

    fn malformed_message(result: Result<impl std::fmt::Debug, SigningError>) -> String {
        match result {
            Err(SigningError::Malformed(message)) => message,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let pair = generate_keypair().unwrap();
        let signature = sign(&pair.secret, WASM).unwrap();
        assert!(signature.ends_with('\n'));
        let id = key_id_of(&pair.public).unwrap();
        assert_eq!(id.len(), 16);
        assert!(signature.starts_with(&format!("ed25519:{id}:")));
        assert_eq!(
            trusted(&[&pair]).verify(WASM, Some(signature.as_bytes())),
            Ok(id)
        );
    }

    #[test]
    fn text_formats_are_as_documented() {
        let pair = generate_keypair().unwrap();
        let public = pair.public.strip_prefix("ed25519:").unwrap();
        assert_eq!(public.len(), 64);
        assert!(
            public
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        let secret = pair.secret.strip_prefix("ed25519-secret:").unwrap();
        assert_eq!(secret.strip_suffix('\n').unwrap().len(), 64);
        let signature = sign(&pair.secret, WASM).unwrap();
        let hex = signature.trim_end().rsplit(':').next().unwrap();
        assert_eq!(hex.len(), 128);
        assert!(!format!("{pair:?}").contains(secret.trim_end()));
    }

    #[test]
    fn the_signed_message_is_the_domain_tag_and_the_digest() {
        let pair = generate_keypair().unwrap();
        let signature = sign(&pair.secret, WASM).unwrap();
        let (_, signature) = parse_signature(signature.as_bytes()).unwrap();
        let key = parse_public(&pair.public).unwrap();
        let mut message = b"enforcer-rule-signature-v1\n".to_vec();
        message.extend_from_slice(&Sha256::digest(WASM));
        assert!(key.verify_strict(&message, &signature).is_ok());
        assert!(key.verify_strict(WASM, &signature).is_err());
    }

    #[test]
    fn surrounding_whitespace_is_tolerated() {
        let pair = generate_keypair().unwrap();
        let signature = format!("  \n{}\r\n\n", sign(&pair.secret, WASM).unwrap().trim());
        let keys = TrustedKeys::parse(&[format!(" {}\n", pair.public)]).unwrap();
        assert!(keys.verify(WASM, Some(signature.as_bytes())).is_ok());
    }

    #[test]
    fn a_flipped_byte_is_a_mismatch() {
        let pair = generate_keypair().unwrap();
        let signature = sign(&pair.secret, WASM).unwrap();
        let mut changed = WASM.to_vec();
        changed[10] ^= 1;
        let result = trusted(&[&pair]).verify(&changed, Some(signature.as_bytes()));
        assert_eq!(
            result,
            Err(SigningError::Mismatch {
                key_id: key_id_of(&pair.public).unwrap(),
                sha256: hex::encode(Sha256::digest(&changed)),
            })
        );
    }

    #[test]
    fn a_signature_by_an_untrusted_key_is_refused() {
        let trusted_pair = generate_keypair().unwrap();
        let other = generate_keypair().unwrap();
        let signature = sign(&other.secret, WASM).unwrap();
        assert_eq!(
            trusted(&[&trusted_pair]).verify(WASM, Some(signature.as_bytes())),
            Err(SigningError::UntrustedKey {
                key_id: key_id_of(&other.public).unwrap()
            })
        );
    }

    #[test]
    fn a_trusted_key_id_on_another_keys_signature_is_a_mismatch() {
        let trusted_pair = generate_keypair().unwrap();
        let other = generate_keypair().unwrap();
        let forged = sign(&other.secret, WASM).unwrap();
        let other_id = key_id_of(&other.public).unwrap();
        let trusted_id = key_id_of(&trusted_pair.public).unwrap();
        let forged = forged.replace(&other_id, &trusted_id);
        assert_eq!(
            trusted(&[&trusted_pair]).verify(WASM, Some(forged.as_bytes())),
            Err(SigningError::Mismatch {
                key_id: trusted_id,
                sha256: hex::encode(Sha256::digest(WASM)),
            })
        );
    }

    #[test]
    fn any_of_several_trusted_keys_may_sign() {
        let first = generate_keypair().unwrap();
        let second = generate_keypair().unwrap();
        let keys = trusted(&[&first, &second, &first]);
        assert_eq!(keys.len(), 2);
        let signature = sign(&second.secret, WASM).unwrap();
        assert_eq!(
            keys.verify(WASM, Some(signature.as_bytes())),
            Ok(key_id_of(&second.public).unwrap())
        );
    }

    #[test]
    fn unsigned_and_no_keys_are_refused() {
        let pair = generate_keypair().unwrap();
        assert_eq!(
            trusted(&[&pair]).verify(WASM, None),
            Err(SigningError::Unsigned)
        );
        let signature = sign(&pair.secret, WASM).unwrap();
        let none = TrustedKeys::default();
        assert!(none.is_empty());
        assert_eq!(
            none.verify(WASM, Some(signature.as_bytes())),
            Err(SigningError::NoTrustedKeys)
        );
    }

    #[test]
    fn malformed_signatures_say_what_is_wrong() {
        let pair = generate_keypair().unwrap();
        let keys = trusted(&[&pair]);
        let good = sign(&pair.secret, WASM).unwrap();
        let good = good.trim();
        let id = key_id_of(&pair.public).unwrap();
        let digits = good.rsplit(':').next().unwrap();
        let check = |text: &str, expected: &str| {
            let message = malformed_message(keys.verify(WASM, Some(text.as_bytes())));
            assert!(message.starts_with("signature: "), "{message}");
            assert!(message.contains(expected), "{message} lacks {expected}");
        };
        check(
            &good.replacen("ed25519:", "rsa:", 1),
            "no `ed25519:` prefix",
        );
        check(
            &format!("ed25519:{id}:{}zz", &digits[..126]),
            "`z` at position 126 is not a hex digit",
        );
        check(
            &format!("ed25519:{id}:{}", &digits[..126]),
            "expected 128 hex digits, found 126",
        );
        check(&format!("ed25519:{}", &digits[..64]), "found no key id");
        check(
            &format!("ed25519:{}:{digits}", &id[..8]),
            "key id must be 16",
        );
        check("", "empty");
        let message = malformed_message(keys.verify(WASM, Some(&[0xff, 0xfe][..])));
        assert!(message.contains("not UTF-8"), "{message}");
    }

    #[test]
    fn malformed_keys_say_what_is_wrong() {
        let pair = generate_keypair().unwrap();
        let message = malformed_message(key_id_of(&pair.public.replace("ed25519:", "ed448:")));
        assert!(message.starts_with("public key: "), "{message}");
        assert!(message.contains("no `ed25519:` prefix"), "{message}");
        let message = malformed_message(key_id_of(&pair.public[..pair.public.len() - 2]));
        assert!(
            message.contains("expected 64 hex digits, found 62"),
            "{message}"
        );
        let message = malformed_message(key_id_of(&pair.secret));
        assert!(message.contains("found a secret key"), "{message}");
        // A small-order point, which would accept forged signatures.
        let weak = format!("ed25519:01{}", "0".repeat(62));
        let message = malformed_message(key_id_of(&weak));
        assert!(message.contains("weak"), "{message}");

        let message = malformed_message(sign(&pair.public, WASM));
        assert!(message.starts_with("secret key: "), "{message}");
        assert!(message.contains("found a public key"), "{message}");
        let bad_secret = pair.secret.replace("ed25519-secret:", "ed25519-secret:q");
        let message = malformed_message(sign(&bad_secret, WASM));
        assert!(message.contains("`q` at position 0"), "{message}");
        let secret_digits = pair.secret.trim().strip_prefix("ed25519-secret:").unwrap();
        assert!(!message.contains(secret_digits), "{message}");
    }

    #[test]
    fn trusted_keys_refuse_a_bad_entry_naming_its_index() {
        let pair = generate_keypair().unwrap();
        let texts = vec![
            pair.public.clone(),
            format!("{}0", pair.public),
            "ed25519:nope".to_string(),
        ];
        assert_eq!(
            TrustedKeys::parse(&texts).unwrap_err(),
            SigningError::Malformed(
                "trusted key at index 1: expected 64 hex digits, found 65".into()
            )
        );
        let error = TrustedKeys::parse(&texts[..1]).map(|keys| keys.len());
        assert_eq!(error, Ok(1));
        let display = TrustedKeys::parse(&texts[2..]).unwrap_err().to_string();
        assert_eq!(
            display,
            "malformed trusted key at index 0: `n` at position 0 is not a hex digit"
        );
    }

    #[test]
    fn generated_keypairs_differ() {
        let a = generate_keypair().unwrap();
        let b = generate_keypair().unwrap();
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.public, b.public);
        assert_ne!(key_id_of(&a.public).unwrap(), key_id_of(&b.public).unwrap());
    }
}
