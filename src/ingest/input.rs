//! Opening a text extract (CSV, JSON lines) before any parser sees it: the file's signature
//! decides what it really is. Gzip is read transparently; other archives, compressed and
//! binary files are refused with what they are and what to do; UTF-16 (by byte-order mark or
//! as declared) is decoded to UTF-8; UTF-32 is refused. Offices send every one of these under
//! a `.csv` name.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use encoding_rs::{Decoder, Encoding, UTF_8, UTF_16BE, UTF_16LE};
use indicatif::ProgressBar;

use super::{Fingerprint, HashingReader, IngestError};

/// How many bytes at the start of a file are inspected for its signature and NUL bytes.
const SNIFF_BYTES: usize = 64 * 1024;

/// An opened text extract: a stream of bytes in `encoding`, with the raw file's fingerprint.
pub struct TextInput {
    /// The content, decompressed and (for UTF-16) decoded to UTF-8.
    pub reader: Box<dyn Read + Send>,
    /// The encoding of the bytes `reader` yields.
    pub encoding: &'static Encoding,
    /// Fingerprint of the file's own bytes, complete once `reader` is exhausted.
    pub fingerprint: Fingerprint,
    /// What was done to the bytes, for the log (`gzip`, `UTF-16LE decoded`).
    pub conversions: Vec<&'static str>,
}

/// Opens `path` for a text reader expecting `what` ("CSV", "JSON lines") in `declared`.
pub fn open_text(
    path: &Path,
    declared: &'static Encoding,
    what: &str,
    progress: Option<ProgressBar>,
) -> Result<TextInput, IngestError> {
    let file = std::fs::File::open(path).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let hashing = HashingReader::new(file, progress);
    let fingerprint = hashing.fingerprint();
    let mut conversions = Vec::new();
    let mut reader: Box<dyn Read + Send> = Box::new(hashing);
    let mut layers = 0;
    loop {
        let mut buffered = BufReader::with_capacity(1 << 20, reader);
        let head = fill_head(&mut buffered).map_err(|source| IngestError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let refuse = |kind: &str, fix: String| IngestError::NotText {
            path: path.to_path_buf(),
            expected: what.to_string(),
            kind: kind.to_string(),
            fix,
        };
        if head.starts_with(&[0x1f, 0x8b]) && layers == 0 {
            conversions.push("gzip");
            layers += 1;
            reader = Box::new(flate2::read::MultiGzDecoder::new(buffered));
            continue;
        }
        if let Some((kind, fix)) = foreign_signature(&head) {
            return Err(refuse(kind, fix.to_string()));
        }
        if head.starts_with(&[0xff, 0xfe, 0, 0]) || head.starts_with(&[0, 0, 0xfe, 0xff]) {
            return Err(refuse(
                "UTF-32 text",
                "convert it to UTF-8 (iconv -f UTF-32 -t UTF-8 FILE)".into(),
            ));
        }
        let bom = if head.starts_with(&[0xff, 0xfe]) {
            Some(UTF_16LE)
        } else if head.starts_with(&[0xfe, 0xff]) {
            Some(UTF_16BE)
        } else {
            None
        };
        let utf16 = bom.or((declared == UTF_16LE || declared == UTF_16BE).then_some(declared));
        if let Some(encoding) = utf16 {
            conversions.push(if encoding == UTF_16LE {
                "UTF-16LE decoded"
            } else {
                "UTF-16BE decoded"
            });
            return Ok(TextInput {
                reader: Box::new(Utf16ToUtf8::new(buffered, encoding)),
                encoding: UTF_8,
                fingerprint,
                conversions,
            });
        }
        let nuls = head.iter().filter(|b| **b == 0).count();
        if nuls * 100 > head.len().max(1) {
            let odd = head.iter().skip(1).step_by(2).filter(|b| **b == 0).count();
            let even = head.iter().step_by(2).filter(|b| **b == 0).count();
            let half = head.len() / 2;
            if odd * 10 > half * 4 && even * 10 < half {
                return Err(refuse(
                    "UTF-16LE text without a byte-order mark",
                    "set format.encoding = \"utf-16le\" for this source".into(),
                ));
            }
            if even * 10 > half * 4 && odd * 10 < half {
                return Err(refuse(
                    "UTF-16BE text without a byte-order mark",
                    "set format.encoding = \"utf-16be\" for this source".into(),
                ));
            }
            return Err(refuse(
                "binary data (NUL bytes at the start)",
                "check what was delivered under this name (a damaged copy, a disk image, a database dump)".into(),
            ));
        }
        return Ok(TextInput {
            reader: Box::new(buffered),
            encoding: declared,
            fingerprint,
            conversions,
        });
    }
}

/// Fills the buffer with up to [`SNIFF_BYTES`] without consuming them.
fn fill_head<R: Read>(reader: &mut BufReader<R>) -> std::io::Result<Vec<u8>> {
    // `fill_buf` returns what one read gave; a file gives the whole buffer, a decoder less.
    let head = reader.fill_buf()?;
    Ok(head[..head.len().min(SNIFF_BYTES)].to_vec())
}

/// Signatures of files that are not text, with what to do about each.
fn foreign_signature(head: &[u8]) -> Option<(&'static str, &'static str)> {
    const SIGNATURES: &[(&[u8], &str, &str)] = &[
        (
            b"PK\x03\x04",
            "a ZIP archive (an XLSX workbook is one)",
            "if it is a workbook set format = { type = \"xlsx\" }; otherwise unzip it",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "a legacy Office file (an XLS workbook)",
            "set format = { type = \"xlsx\" } (XLS workbooks are read too)",
        ),
        (
            b"PAR1",
            "a Parquet file",
            "set format = { type = \"parquet\" }",
        ),
        (
            b"\x28\xb5\x2f\xfd",
            "zstd-compressed data",
            "decompress it first (zstd -d FILE)",
        ),
        (
            b"BZh",
            "bzip2-compressed data",
            "decompress it first (bunzip2 FILE)",
        ),
        (
            b"\xfd7zXZ\x00",
            "xz-compressed data",
            "decompress it first (unxz FILE)",
        ),
        (
            b"7z\xbc\xaf\x27\x1c",
            "a 7-Zip archive",
            "extract it first (7z x FILE)",
        ),
        (b"Rar!", "a RAR archive", "extract it first (unrar x FILE)"),
        (
            b"%PDF",
            "a PDF document",
            "ask the office for the data as CSV or XLSX",
        ),
    ];
    SIGNATURES
        .iter()
        .find(|(magic, _, _)| head.starts_with(magic))
        .map(|(_, kind, fix)| (*kind, *fix))
}

/// Decodes UTF-16 to UTF-8 while streaming (a byte-order mark is removed).
struct Utf16ToUtf8<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    input_range: (usize, usize),
    output: Vec<u8>,
    output_range: (usize, usize),
    eof: bool,
    done: bool,
}

impl<R: Read> Utf16ToUtf8<R> {
    fn new(inner: R, encoding: &'static Encoding) -> Self {
        Utf16ToUtf8 {
            inner,
            // The mark itself is consumed, never passed on as U+FEFF.
            decoder: encoding.new_decoder_with_bom_removal(),
            input: vec![0; 64 * 1024],
            input_range: (0, 0),
            output: vec![0; 128 * 1024],
            output_range: (0, 0),
            eof: false,
            done: false,
        }
    }
}

impl<R: Read> Read for Utf16ToUtf8<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let (start, end) = self.output_range;
            if start < end {
                let n = buf.len().min(end - start);
                buf[..n].copy_from_slice(&self.output[start..start + n]);
                self.output_range.0 += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            let (mut from, mut to) = self.input_range;
            if from == to && !self.eof {
                from = 0;
                to = self.inner.read(&mut self.input)?;
                self.eof = to == 0;
            }
            let (result, read, written, _) =
                self.decoder
                    .decode_to_utf8(&self.input[from..to], &mut self.output, self.eof);
            self.input_range = (from + read, to);
            self.output_range = (0, written);
            // With `last`, an empty input means the decoder is finished and must not be reused.
            self.done = self.eof && result == encoding_rs::CoderResult::InputEmpty;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(
        bytes: &[u8],
        declared: &'static Encoding,
    ) -> Result<(String, Vec<&'static str>), String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, bytes).unwrap();
        let mut input = open_text(&path, declared, "CSV", None).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        input.reader.read_to_end(&mut out).unwrap();
        assert_eq!(input.fingerprint.snapshot().1, bytes.len() as u64);
        Ok((String::from_utf8(out).unwrap(), input.conversions))
    }

    #[test]
    fn utf16_with_a_byte_order_mark_is_decoded() {
        let text = "NIK;Nama\n3601;Siti Ñ\n";
        let mut le = vec![0xff, 0xfe];
        le.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(read_all(&le, UTF_8).unwrap().0, text);
        let mut be = vec![0xfe, 0xff];
        be.extend(text.encode_utf16().flat_map(|u| u.to_be_bytes()));
        assert_eq!(read_all(&be, UTF_8).unwrap().0, text);
        // Declared, without a mark.
        let bare: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(read_all(&bare, UTF_16LE).unwrap().0, text);
        let refused = read_all(&bare, UTF_8).unwrap_err();
        assert!(refused.contains("utf-16le"), "{refused}");
    }

    #[test]
    fn gzip_is_read_and_other_signatures_are_named() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"a,b\n1,2\n").unwrap();
        let (text, conversions) = read_all(&gz.finish().unwrap(), UTF_8).unwrap();
        assert_eq!(text, "a,b\n1,2\n");
        assert_eq!(conversions, ["gzip"]);
        let zip = read_all(b"PK\x03\x04rest", UTF_8).unwrap_err();
        assert!(zip.contains("ZIP archive") && zip.contains("xlsx"), "{zip}");
        let zeros = read_all(&[0u8; 5000], UTF_8).unwrap_err();
        assert!(zeros.contains("binary data"), "{zeros}");
        let utf32 = read_all(&[0xff, 0xfe, 0, 0, b'a', 0, 0, 0], UTF_8).unwrap_err();
        assert!(utf32.contains("UTF-32"), "{utf32}");
    }
}
