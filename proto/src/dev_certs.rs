//! A throw-away certificate authority for local runs and tests. Never for production: the keys
//! are written unencrypted next to the certificates.
//!
//! Server certificates carry the service's DNS name, `localhost` and `127.0.0.1` as SANs, so the
//! same files work in compose (by service name) and on loopback; they also serve the service as
//! a client of another (file-core calls hangout-core with its own certificate). Client
//! certificates carry only their own name, which servers check against their allow-list.

use std::{io, net::IpAddr, path::Path};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::tls::TlsFiles;

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct PemPair {
    pub cert: String,
    pub key: String,
}

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    #[error("certificate generation failed")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write certificate files")]
    Write(#[from] io::Error),
}

/// A development CA that issues server and client certificates.
pub struct DevCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl DevCa {
    /// Makes a new CA with a fresh key pair and the given common name.
    ///
    /// # Errors
    /// When key generation fails.
    pub fn new(common_name: &str) -> Result<Self, DevCertError> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        name.push(DnType::OrganizationName, "Hangout Planner (development)");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for `name`, also valid for `localhost` and `127.0.0.1`, usable as
    /// the service's client certificate too.
    ///
    /// # Errors
    /// When generation fails or `name` is not a valid DNS name.
    pub fn issue_server(&self, name: &str) -> Result<PemPair, DevCertError> {
        let mut params = CertificateParams::new(vec![name.to_owned(), "localhost".to_owned()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.issue(name, params)
    }

    /// A client certificate whose only name is `name`.
    ///
    /// # Errors
    /// When generation fails or `name` is not a valid DNS name.
    pub fn issue_client(&self, name: &str) -> Result<PemPair, DevCertError> {
        let mut params = CertificateParams::new(vec![name.to_owned()])?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(name, params)
    }

    fn issue(&self, name: &str, mut params: CertificateParams) -> Result<PemPair, DevCertError> {
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(PemPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// A fresh Ed25519 private key, PKCS#8 PEM: the gateway's development JWT signing key.
///
/// # Errors
/// When key generation fails.
pub fn ed25519_key_pem() -> Result<String, DevCertError> {
    Ok(KeyPair::generate_for(&rcgen::PKCS_ED25519)?.serialize_pem())
}

/// Writes `ca.pem` and `{name}.pem` / `{name}.key` into `dir` and returns the paths.
///
/// # Errors
/// When the folder or files cannot be written.
pub fn write_pair(
    dir: &Path,
    ca: &DevCa,
    name: &str,
    pair: &PemPair,
) -> Result<TlsFiles, DevCertError> {
    std::fs::create_dir_all(dir)?;
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.ca, ca.cert_pem())?;
    std::fs::write(&files.cert, &pair.cert)?;
    write_private(&files.key, &pair.key)?;
    Ok(files)
}

/// Writes `contents` readable by the owner only (mode 0600 on Unix): for private keys.
#[cfg(unix)]
pub fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    use std::{fs::OpenOptions, io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
pub fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    std::fs::write(path, contents)
}
