#pragma once
// TLS test material made with the openssl command-line tool, the way an operator makes it:
// a test PKI (a root CA with an intermediate that signs server certificates, a second root
// nobody trusts, a CA for client certificates), leaf certificates for given DNS names with
// ECDSA P-256 or RSA 2048 keys, the broken files weir must refuse, CRLs and OCSP responses.
// Also the real TLS peers the tests talk through: `openssl s_server` as a TLS origin,
// `openssl s_client` and `curl` as clients.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/util.h"

namespace weir::test {

enum class KeyType { ecdsa, rsa };

struct CertSpec {
  std::vector<std::string> dns{};  // subjectAltName DNS entries; empty: no subjectAltName at all
  // "/C=FR/O=weir-tests/CN=name"; default: "/O=weir-tests/CN=<dns[0]>" (CN "leaf" without dns).
  std::string subject{};
  KeyType key = KeyType::ecdsa;
  int days = 30;             // validity from now (when not_before/not_after are empty)
  std::string not_before{};  // openssl ca -startdate, e.g. "20200101000000Z"
  std::string not_after{};   // openssl ca -enddate
  bool client = false;       // extendedKeyUsage clientAuth instead of serverAuth
};

struct Cert {
  std::string name;
  std::string pem;      // certificate, chain and private key in one file (what weir loads)
  std::string cert;     // the leaf certificate alone
  std::string key;      // the private key alone
  std::string chain;    // the intermediate certificates (empty path when issued by a root)
  std::string bundle;   // leaf + chain, no key
  std::string root;     // the root CA that anchors it
  std::string serial;   // upper-case hex, as `openssl x509 -serial` prints it
  std::string subject;  // "/C=../O=../CN=.."
  std::string issuer;   // the issuer's subject, same form
  std::string cn;
  long long not_before = 0;  // Unix time
  long long not_after = 0;   // Unix time
};

// One certificate authority kept as an `openssl ca` database in its own directory.
class TestCa {
 public:
  // A self-signed root (parent == nullptr) or a CA signed by parent.
  TestCa(const std::string& dir, const std::string& name, const std::string& subject,
         const TestCa* parent);
  const std::string& cert() const { return cert_; }  // PEM of the CA certificate
  const std::string& key() const { return key_; }
  const std::string& subject() const { return subject_; }
  const std::string& dir() const { return dir_; }
  // Intermediates between this CA and its root (empty for a root), as PEM text.
  std::string chain_text() const;
  // The certificate of the root above this CA (its own for a root).
  std::string root_cert() const { return parent_ ? parent_->root_cert() : cert_; }

  // Issues a leaf. Files: <out_dir>/<name>.pem (cert + chain + key), .crt, .key.pem,
  // .chain.pem, .bundle.pem.
  Cert issue(const std::string& out_dir, const std::string& name, const CertSpec& spec) const;
  void revoke(const Cert& cert) const;
  // A CRL with every certificate revoked so far, written to path.
  std::string crl(const std::string& path) const;
  // A DER OCSP response for cert (good, or revoked if revoked), signed by this CA.
  void ocsp_response(const Cert& cert, const std::string& path) const;

 private:
  std::string config_path() const { return dir_ + "/ca.cnf"; }
  std::string dir_, name_, subject_, cert_, key_;
  const TestCa* parent_ = nullptr;
};

// The PKI of one test, in a temporary directory removed by the destructor (kept when the
// test failed or $WEIR_TEST_KEEP is set).
class TestPki {
 public:
  TestPki();
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& dir() const { return dir_; }
  // The trust anchor for server certificates (root of the intermediate that signs them).
  const std::string& root_ca() const { return root_.cert(); }
  const TestCa& intermediate() const { return inter_; }
  // A root nobody trusts, for "wrong CA" cases.
  const std::string& other_ca() const { return other_.cert(); }
  // The CA of client certificates (a root that signs clients directly).
  const std::string& client_ca() const { return client_.cert(); }

  // A server certificate signed by the intermediate; its .pem holds leaf, intermediate, key.
  Cert server(const std::string& name, CertSpec spec);
  // A server certificate signed by the root itself (no chain).
  Cert root_server(const std::string& name, CertSpec spec);
  // A server certificate signed by the untrusted root.
  Cert untrusted_server(const std::string& name, CertSpec spec);
  // A client certificate signed by the client CA (clientAuth).
  Cert client(const std::string& name, CertSpec spec);
  // A client certificate signed by the untrusted root.
  Cert untrusted_client(const std::string& name, CertSpec spec);

  // Revokes a client certificate and returns the path of a fresh CRL of the client CA.
  std::string revoke_client(const Cert& cert);
  // A CRL of the client CA (whatever has been revoked so far).
  std::string client_crl();
  // Writes <cert.pem>.ocsp: a DER OCSP response "good" for a server certificate.
  std::string staple_ocsp(const Cert& cert);

  // Broken files (each a fresh path in dir()):
  // the certificate with its chain and another private key.
  std::string mismatched_key(const std::string& name);
  // the leaf, a CA certificate that did not sign it, and the key.
  std::string bad_chain(const std::string& name);
  // certificate and chain, no key (and no <file>.key).
  std::string missing_key(const std::string& name);
  // a private key alone.
  std::string key_only(const std::string& name);
  // text that is no PEM at all.
  std::string garbage(const std::string& name);
  // The cert + chain in <name>.pem and the key in <name>.pem.key (the "key kept apart" layout).
  Cert key_apart(const std::string& name, CertSpec spec);

  // Writes text to <dir()>/<name> and returns its path.
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::string dir_;
  TestCa root_, inter_, other_, client_;
};

// Runs `openssl ARGS...`; throws std::runtime_error (with its output) when it fails.
CommandResult openssl(const std::vector<std::string>& args, const std::string& stdin_data = "");
// "YYYYMMDDHHMMSSZ" for the Unix time t (UTC).
std::string asn1_time(long long t);
long long unix_now();

// `openssl verify` of cert against ca (and untrusted intermediates, a CRL): 0 when OK,
// else OpenSSL's verify error number ("error N at ..."), -1 when the output is unclear.
int openssl_verify(const std::string& ca, const std::string& cert,
                   const std::string& untrusted = "", const std::string& crl = "");

// A child process in its own process group, stdin </dev/null, stdout and stderr to a file.
// The destructor (or stop()) SIGKILLs the group and reaps it.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& cwd,
               const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  pid_t pid() const { return pid_; }
  bool alive();
  void stop();
  std::string output() const;  // the log so far

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string log_;
};

// `openssl s_server` on 127.0.0.1, a free port, in a directory of its own. By default
// (-HTTP) "GET /id.txt" answers "HTTP/1.1 200 OK" with Content-Length and "<name>\n" as the
// body, then closes. close_delimited (-WWW): "HTTP/1.0 200 ok" without Content-Length, the
// body ending when the server closes. trace (-msg): the log shows every handshake message,
// so full handshakes (">>> ... Certificate") can be told from resumed ones.
struct TlsServerOptions {
  std::string client_ca{};  // -Verify 1 -CAfile: a client certificate is required
  std::string sni_name{};   // -servername with -cert2/-key2 of sni_cert (issued by a root:
                            // s_server sends no chain with it)
  const Cert* sni_cert = nullptr;
  bool close_delimited = false;
  bool trace = false;
  std::vector<std::string> extra{};  // more s_server options
};

class TlsServer {
 public:
  TlsServer(std::string name, const Cert& cert, TlsServerOptions options = {});
  ~TlsServer();
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& name() const { return name_; }
  std::string log() const;
  // Handshakes seen (ClientHellos received) and full ones (Certificate messages sent); needs
  // trace.
  int handshakes() const;
  int full_handshakes() const;
  void stop();
  // Starts again on the same port (after stop()).
  bool start();

 private:
  std::string name_, dir_;
  Cert cert_;
  TlsServerOptions options_;
  uint16_t port_ = 0;
  std::optional<ChildProcess> process_;
};

// `openssl s_client -connect 127.0.0.1:PORT ARGS... -ign_eof`, stdin = input (by default an
// HTTP/1.1 GET /id.txt with Connection: close, so that the client waits for the answer and
// the session tickets that come with it).
struct SClient {
  int exit_code = -1;
  std::string out, err;
  bool handshake() const;       // a cipher was negotiated
  bool reused() const;          // "Reused, ..." rather than "New, ..."
  std::string subject() const;  // the server certificate's subject line, "C = FR, ..., CN = x"
  std::string cn() const;       // its CN
  std::string issuer() const;
  std::string protocol() const;  // "TLSv1.3", from "New, TLSv1.3, Cipher is ..."
  std::string cipher() const;
  std::string alpn() const;     // "" when "No ALPN negotiated"
  int server_key_bits() const;  // "Server public key is N bit"
  int verify_code() const;      // "Verify return code: N"
  bool has(const std::string& text) const;
  std::string http_body() const;  // what follows the first blank line after "HTTP/1."
};

std::string default_sclient_input();
SClient s_client(uint16_t port, const std::vector<std::string>& args,
                 std::optional<std::string> input = std::nullopt, int timeout_ms = 20000);

// `curl -sS -i --max-time 20 --resolve NAME:PORT:127.0.0.1 --cacert CA https://NAME:PORT/PATH`.
struct CurlResult {
  int exit_code = -1;
  int status = 0;
  std::string head, body, err;
  std::string header(const std::string& name) const;  // first value, case-insensitive
};
CurlResult curl_https(uint16_t port, const std::string& name, const std::string& path,
                      const std::string& cacert, const std::vector<std::string>& extra = {});

}  // namespace weir::test
