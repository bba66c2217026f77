import COpenSSL
import Glibc

/// A development CA and a server certificate it signed, made with the OpenSSL API
/// (ECDSA P-256, SHA-256). For `serve --dev` and for tests; never for production.
public enum DevelopmentCertificates {
    public struct Paths: Sendable, Equatable {
        public let caCertificate: String
        public let certificate: String
        public let privateKey: String
    }

    public static func paths(in directory: String) -> Paths {
        Paths(caCertificate: directory + "/ca.crt", certificate: directory + "/tls.crt", privateKey: directory + "/tls.key")
    }

    /// Returns the files in `directory`, creating them first unless all three exist.
    public static func ensure(in directory: String, dnsNames: [String] = ["localhost"],
                              ipAddresses: [String] = ["127.0.0.1"]) throws(TLSError) -> (paths: Paths, created: Bool) {
        let paths = paths(in: directory)
        let files: [String] = [paths.caCertificate, paths.certificate, paths.privateKey]
        if files.allSatisfy({ (path: String) in access(path, R_OK) == 0 }) {
            return (paths, false)
        }
        try generate(in: directory, dnsNames: dnsNames, ipAddresses: ipAddresses)
        return (paths, true)
    }

    /// Writes a new CA (`ca.crt`, `ca.key`) and server pair (`tls.crt`, `tls.key`)
    /// into `directory`, creating it if needed. Keys are written mode 0600.
    @discardableResult
    /// `validFrom` is seconds from now when the server certificate becomes valid (a
    /// little in the past by default, for clocks a little behind).
    public static func generate(in directory: String, dnsNames: [String] = ["localhost"],
                                ipAddresses: [String] = ["127.0.0.1"], validDays: Int = 365,
                                validFrom: Int = -300) throws(TLSError) -> Paths {
        try makeDirectories(directory)
        ERR_clear_error()
        guard let caKey = copenssl_ec_p256_keygen(), let serverKey = copenssl_ec_p256_keygen() else {
            throw .certificateGenerationFailed(openSSLErrors())
        }
        defer { EVP_PKEY_free(caKey); EVP_PKEY_free(serverKey) }
        let ca = try makeCertificate(commonName: "atlas-stream-webhook development CA", key: caKey, issuer: nil,
                                     issuerKey: caKey, validDays: validDays,
                                     extensions: [(NID_basic_constraints, "critical,CA:TRUE"),
                                                  (NID_key_usage, "critical,keyCertSign,cRLSign"),
                                                  (NID_subject_key_identifier, "hash")])
        defer { X509_free(ca) }
        let san = (dnsNames.map { "DNS:" + $0 } + ipAddresses.map { "IP:" + $0 }).joined(separator: ",")
        let leaf = try makeCertificate(commonName: dnsNames.first ?? ipAddresses.first ?? "localhost", key: serverKey,
                                       issuer: ca, issuerKey: caKey, validDays: validDays, validFrom: validFrom,
                                       extensions: [(NID_basic_constraints, "critical,CA:FALSE"),
                                                    (NID_key_usage, "critical,digitalSignature"),
                                                    (NID_ext_key_usage, "serverAuth,clientAuth"),
                                                    (NID_subject_alt_name, san),
                                                    (NID_authority_key_identifier, "keyid")])
        defer { X509_free(leaf) }
        let paths = paths(in: directory)
        try writePEM(path: paths.caCertificate, mode: 0o644) { PEM_write_bio_X509($0, ca) }
        try writePEM(path: directory + "/ca.key", mode: 0o600) {
            PEM_write_bio_PrivateKey($0, caKey, nil, nil, 0, nil, nil)
        }
        try writePEM(path: paths.certificate, mode: 0o644) { PEM_write_bio_X509($0, leaf) }
        try writePEM(path: paths.privateKey, mode: 0o600) {
            PEM_write_bio_PrivateKey($0, serverKey, nil, nil, 0, nil, nil)
        }
        return paths
    }

    private static func makeCertificate(commonName: String, key: OpaquePointer, issuer: OpaquePointer?,
                                        issuerKey: OpaquePointer, validDays: Int, validFrom: Int = -300,
                                        extensions: [(Int32, String)]) throws(TLSError) -> OpaquePointer {
        guard let cert = X509_new() else { throw .certificateGenerationFailed(openSSLErrors()) }
        var serial: UInt64 = 0
        withUnsafeMutableBytes(of: &serial) { _ = RAND_bytes($0.baseAddress?.assumingMemoryBound(to: UInt8.self), 8) }
        serial &= 0x7FFF_FFFF_FFFF_FFFF
        let subject = X509_get_subject_name(cert)
        let ok = X509_set_version(cert, 2) == 1
            && ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial) == 1
            && X509_gmtime_adj(X509_getm_notBefore(cert), validFrom) != nil
            && X509_gmtime_adj(X509_getm_notAfter(cert), validDays * 86_400) != nil
            && X509_set_pubkey(cert, key) == 1
            && X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, commonName, -1, -1, 0) == 1
            && X509_set_issuer_name(cert, issuer.map { X509_get_subject_name($0) } ?? subject) == 1
        guard ok else {
            X509_free(cert)
            throw .certificateGenerationFailed(openSSLErrors())
        }
        var context = X509V3_CTX()
        copenssl_x509v3_set_ctx_nodb(&context)
        X509V3_set_ctx(&context, issuer ?? cert, cert, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                X509_free(cert)
                throw .certificateGenerationFailed(openSSLErrors())
            }
            let added = X509_add_ext(cert, ext, -1)
            X509_EXTENSION_free(ext)
            guard added == 1 else {
                X509_free(cert)
                throw .certificateGenerationFailed(openSSLErrors())
            }
        }
        guard X509_sign(cert, issuerKey, EVP_sha256()) > 0 else {
            X509_free(cert)
            throw .certificateGenerationFailed(openSSLErrors())
        }
        return cert
    }

    private static func writePEM(path: String, mode: mode_t, _ body: (OpaquePointer) -> Int32) throws(TLSError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .fileNotWritable(path: path, errno: errno) }
        fchmod(fd, mode)
        guard let bio = BIO_new_fd(fd, BIO_CLOSE) else {
            close(fd)
            throw .certificateGenerationFailed(openSSLErrors())
        }
        defer { BIO_free_all(bio) }
        guard body(bio) == 1 else { throw .certificateGenerationFailed(openSSLErrors()) }
    }

    private static func makeDirectories(_ path: String) throws(TLSError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw .fileNotWritable(path: prefix, errno: errno)
            }
        }
    }
}
