//! Test helpers: a unique temp dir and the openssl CLI.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let p = std::env::temp_dir().join(format!("edgemdm-pki-{name}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub(crate) fn path(&self, file: &str) -> String {
        self.0.join(file).to_string_lossy().into_owned()
    }

    pub(crate) fn write(&self, file: &str, data: &[u8]) -> String {
        let p = self.path(file);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs openssl with `args`; panics with its stderr unless it succeeds. Returns stdout.
pub(crate) fn openssl(args: &[&str]) -> String {
    let out = openssl_status(args);
    assert!(out.0, "openssl {args:?} failed:\n{}\n{}", out.1, out.2);
    out.1
}

/// Runs openssl with `args`; returns (success, stdout, stderr).
pub(crate) fn openssl_status(args: &[&str]) -> (bool, String, String) {
    let out =
        std::process::Command::new("/usr/bin/openssl").args(args).output().expect("run /usr/bin/openssl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Test-only wall clock (the library itself never reads the clock).
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A fresh RSA key (`{name}.key`, PEM) and a DER CSR for it (`{name}.csr.der`) with /CN=`cn`.
pub(crate) fn rsa_key_and_csr(dir: &TempDir, name: &str, bits: u32, cn: &str) -> (String, Vec<u8>) {
    let key = dir.path(&format!("{name}.key"));
    let csr = dir.path(&format!("{name}.csr.der"));
    let subj = format!("/CN={cn}");
    let newkey = format!("rsa:{bits}");
    openssl(&[
        "req", "-new", "-nodes", "-newkey", &newkey, "-keyout", &key, "-subj", &subj, "-outform", "DER",
        "-out", &csr,
    ]);
    (key, std::fs::read(&csr).unwrap())
}

/// `openssl cms -sign` (DER, binary) of the file `input` with this certificate (PEM path) and
/// key (PEM path), into `{name}.cms` in `dir`; `extra` adds options (`-nodetach`, `-md`, …).
pub(crate) fn cms_sign(
    dir: &TempDir,
    name: &str,
    input: &str,
    signer_pem: &str,
    key: &str,
    extra: &[&str],
) -> Vec<u8> {
    let out = dir.path(&format!("{name}.cms"));
    let mut args = vec![
        "cms", "-sign", "-binary", "-outform", "DER", "-in", input, "-signer", signer_pem, "-inkey", key,
        "-out", &out,
    ];
    args.extend_from_slice(extra);
    openssl(&args);
    std::fs::read(&out).unwrap()
}
