//! S3's flexible checksums (`x-amz-checksum-*`): CRCs a server stores with an object and
//! checks a body against. They cost a table lookup per byte where MD5 and SHA-256, which wasm
//! has no CPU instructions for, cost dozens of operations.

use std::hint::black_box;
use std::sync::OnceLock;

use crc::{Algorithm as Catalog, CRC_32_ISO_HDLC, CRC_64_NVME, Crc, Digest, Table};
use http::HeaderMap;

/// The checksum the store sends with each value it writes.
pub const PUT_ALGORITHM: Algorithm = Algorithm::Crc32c;

// CRC32C, which every value the store writes carries, is the `crc32c` crate's: eight bytes
// at a time through an 8 KiB table, a quarter fewer instructions in wasm than `crc`'s byte-wise
// slicing by 16. CRC32 (what boto3, and so Celery, writes) slices by 16 with `crc`'s tables,
// made on first use rather than carried in the component (`black_box` keeps the compiler from
// computing them into the binary after all); CRC64NVME, which only some newer clients write,
// goes a byte at a time.
type Crc32 = Crc<u32, Table<16>>;
type Crc64 = Crc<u64, Table<1>>;

fn crc32(catalog: &'static Catalog<u32>, cell: &'static OnceLock<Box<Crc32>>) -> &'static Crc32 {
    cell.get_or_init(|| Box::new(Crc32::new(black_box(catalog))))
}

fn crc64(catalog: &'static Catalog<u64>, cell: &'static OnceLock<Box<Crc64>>) -> &'static Crc64 {
    cell.get_or_init(|| Box::new(Crc64::new(black_box(catalog))))
}

static CRC32: OnceLock<Box<Crc32>> = OnceLock::new();
static CRC64NVME: OnceLock<Box<Crc64>> = OnceLock::new();

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
}

impl Algorithm {
    /// Strongest first, for a response that carries more than one.
    const ALL: [Algorithm; 3] = [Algorithm::Crc64Nvme, Algorithm::Crc32c, Algorithm::Crc32];

    /// The header that carries it, on a PUT and on a GET's answer.
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
        }
    }

    /// A checksum to feed bytes to.
    pub fn start(self) -> Running {
        Running(match self {
            Algorithm::Crc32 => State::Crc32(crc32(&CRC_32_ISO_HDLC, &CRC32).digest()),
            Algorithm::Crc32c => State::Crc32c(0),
            Algorithm::Crc64Nvme => State::Crc64Nvme(crc64(&CRC_64_NVME, &CRC64NVME).digest()),
        })
    }

    /// The header value for `bytes`.
    pub fn header_value(self, bytes: &[u8]) -> String {
        let mut running = self.start();
        running.update(bytes);
        running.header_value()
    }
}

/// A checksum being computed, bytes fed as they come.
pub struct Running(State);

enum State {
    Crc32(Digest<'static, u32, Table<16>>),
    Crc32c(u32),
    Crc64Nvme(Digest<'static, u64, Table<1>>),
}

impl Running {
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            State::Crc32(digest) => digest.update(bytes),
            State::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, bytes),
            State::Crc64Nvme(digest) => digest.update(bytes),
        }
    }

    /// The checksum of everything fed, as S3 writes it: base64 of its big-endian bytes.
    pub fn header_value(self) -> String {
        use aws_smithy_types::base64::encode;
        match self.0 {
            State::Crc32(digest) => encode(digest.finalize().to_be_bytes()),
            State::Crc32c(crc) => encode(crc.to_be_bytes()),
            State::Crc64Nvme(digest) => encode(digest.finalize().to_be_bytes()),
        }
    }
}

/// The whole-object checksum a response carries (`x-amz-checksum-mode: ENABLED` asks for
/// it), as its header value: `None` when there is none, or only a composite one (a multipart
/// upload's checksum of its parts' checksums, `...-N`), which says nothing a single pass can
/// check. Compared in its base64 form, which S3 writes canonically (padded, no line breaks).
pub fn stored(headers: &HeaderMap) -> Option<(Algorithm, &str)> {
    let composite = headers
        .get("x-amz-checksum-type")
        .is_some_and(|t| t.as_bytes().eq_ignore_ascii_case(b"COMPOSITE"));
    if composite {
        return None;
    }
    Algorithm::ALL.into_iter().find_map(|algorithm| {
        let value = headers.get(algorithm.header())?.to_str().ok()?.trim();
        // Four bytes are eight base64 characters, eight bytes twelve.
        let width = if algorithm == Algorithm::Crc64Nvme {
            12
        } else {
            8
        };
        let base64 = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        (value.len() == width && base64).then_some((algorithm, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_algorithm_gives_its_catalogue_check_value() {
        use aws_smithy_types::base64::encode;
        // The standard check input, and each CRC's published check value.
        let check = b"123456789";
        assert_eq!(
            Algorithm::Crc32.header_value(check),
            encode(0xCBF4_3926u32.to_be_bytes())
        );
        assert_eq!(
            Algorithm::Crc32c.header_value(check),
            encode(0xE306_9283u32.to_be_bytes())
        );
        assert_eq!(
            Algorithm::Crc64Nvme.header_value(check),
            encode(0xAE8B_1486_0A79_9888u64.to_be_bytes())
        );
    }

    #[test]
    fn fed_in_pieces_a_checksum_is_the_same() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for algorithm in Algorithm::ALL {
            let mut running = algorithm.start();
            for piece in bytes.chunks(777) {
                running.update(piece);
            }
            assert_eq!(
                running.header_value(),
                algorithm.header_value(&bytes),
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn header_values_are_base64_of_the_big_endian_checksum() {
        // As S3 documents for an empty object, and as boto3 sends for "hello".
        assert_eq!(Algorithm::Crc32c.header_value(b""), "AAAAAA==");
        assert_eq!(Algorithm::Crc32.header_value(b"hello"), "NhCmhg==");
        assert_eq!(Algorithm::Crc64Nvme.header_value(b""), "AAAAAAAAAAA=");
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_strongest_whole_object_checksum_is_taken() {
        let h = headers(&[
            ("x-amz-checksum-crc32", "NhCmhg=="),
            ("x-amz-checksum-crc64nvme", "AAAAAAAAAAA="),
        ]);
        assert_eq!(stored(&h), Some((Algorithm::Crc64Nvme, "AAAAAAAAAAA=")));
        let h = headers(&[
            ("x-amz-checksum-crc32", "NhCmhg=="),
            ("x-amz-checksum-type", "FULL_OBJECT"),
        ]);
        assert_eq!(stored(&h), Some((Algorithm::Crc32, "NhCmhg==")));
    }

    #[test]
    fn composite_malformed_or_absent_checksums_are_not_taken() {
        for h in [
            headers(&[]),
            headers(&[("x-amz-checksum-crc32c", "NhCmhg==-3")]),
            headers(&[
                ("x-amz-checksum-crc32c", "NhCmhg=="),
                ("x-amz-checksum-type", "COMPOSITE"),
            ]),
            headers(&[("x-amz-checksum-crc32c", "not base64 at all")]),
            headers(&[("x-amz-checksum-crc32c", "!!!!!!!!")]),
            // Eight bytes where four belong.
            headers(&[("x-amz-checksum-crc32c", "AAAAAAAAAAA=")]),
            headers(&[("x-amz-checksum-sha256", "AAAA")]),
        ] {
            assert_eq!(stored(&h), None, "{h:?}");
        }
    }
}
