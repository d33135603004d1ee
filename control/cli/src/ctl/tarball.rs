//! A gzip-compressed ustar archive written from memory: what `node diags` bundles. Regular
//! files and directories only, names below 100 bytes (the bundle's names are ours).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

pub struct TarGz {
    gz: GzEncoder<std::fs::File>,
    mtime: u64,
}

impl TarGz {
    pub fn create(path: &std::path::Path) -> std::io::Result<TarGz> {
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(TarGz {
            gz: GzEncoder::new(std::fs::File::create(path)?, Compression::default()),
            mtime,
        })
    }

    pub fn dir(&mut self, name: &str) -> std::io::Result<()> {
        let name = format!("{}/", name.trim_end_matches('/'));
        self.gz
            .write_all(&header(&name, 0, b'5', 0o755, self.mtime)?)
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> std::io::Result<()> {
        self.gz
            .write_all(&header(name, data.len() as u64, b'0', 0o644, self.mtime)?)?;
        self.gz.write_all(data)?;
        let pad = (512 - data.len() % 512) % 512;
        self.gz.write_all(&vec![0u8; pad])
    }

    /// The two zero blocks that end an archive, and the gzip trailer.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.gz.write_all(&[0u8; 1024])?;
        self.gz.finish()?.sync_all()
    }
}

fn header(name: &str, size: u64, kind: u8, mode: u32, mtime: u64) -> std::io::Result<[u8; 512]> {
    if name.len() >= 100 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("archive member name too long: {name}"),
        ));
    }
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

/// A zero-padded octal field ending in NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    let text = &text.as_bytes()[text.len().saturating_sub(width)..];
    field[..width].copy_from_slice(text);
    field[width] = 0;
}
