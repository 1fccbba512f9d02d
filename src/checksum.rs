//! S3's flexible checksums (`x-amz-checksum-*`): CRCs a server stores with an object and
//! checks a body against. They cost a table lookup per byte where MD5 and SHA-256, which wasm
//! has no CPU instructions for, cost dozens of operations.

use std::hint::black_box;
use std::sync::OnceLock;

use crc::{Algorithm as Catalog, CRC_32_ISCSI, CRC_32_ISO_HDLC, CRC_64_NVME, Crc, Table};
use http::HeaderMap;

/// The checksum the store sends with each value it writes.
pub const PUT_ALGORITHM: Algorithm = Algorithm::Crc32c;

/// Slicing by 16: 16 KiB of tables for a 32-bit CRC, 32 KiB for a 64-bit one, made on first
/// use rather than carried in the component, where they would be a tenth of the store-only
/// build. (`black_box` keeps the compiler from computing them into the binary after all.)
type Crc32 = Crc<u32, Table<16>>;
type Crc64 = Crc<u64, Table<1>>;

fn crc32(catalog: &'static Catalog<u32>, cell: &'static OnceLock<Box<Crc32>>) -> &'static Crc32 {
    cell.get_or_init(|| Box::new(Crc32::new(black_box(catalog))))
}

fn crc64(catalog: &'static Catalog<u64>, cell: &'static OnceLock<Box<Crc64>>) -> &'static Crc64 {
    cell.get_or_init(|| Box::new(Crc64::new(black_box(catalog))))
}

static CRC32C: OnceLock<Box<Crc32>> = OnceLock::new();
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

    /// The checksum of `bytes`, big-endian, as S3 encodes it (before base64).
    pub fn compute(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Crc32 => crc32(&CRC_32_ISO_HDLC, &CRC32)
                .checksum(bytes)
                .to_be_bytes()
                .to_vec(),
            Algorithm::Crc32c => crc32(&CRC_32_ISCSI, &CRC32C)
                .checksum(bytes)
                .to_be_bytes()
                .to_vec(),
            Algorithm::Crc64Nvme => crc64(&CRC_64_NVME, &CRC64NVME)
                .checksum(bytes)
                .to_be_bytes()
                .to_vec(),
        }
    }

    /// The header value for `bytes`.
    pub fn header_value(self, bytes: &[u8]) -> String {
        aws_smithy_types::base64::encode(self.compute(bytes))
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
        // The standard check input, and each CRC's published check value.
        let check = b"123456789";
        assert_eq!(
            Algorithm::Crc32.compute(check),
            0xCBF4_3926u32.to_be_bytes()
        );
        assert_eq!(
            Algorithm::Crc32c.compute(check),
            0xE306_9283u32.to_be_bytes()
        );
        assert_eq!(
            Algorithm::Crc64Nvme.compute(check),
            0xAE8B_1486_0A79_9888u64.to_be_bytes()
        );
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
