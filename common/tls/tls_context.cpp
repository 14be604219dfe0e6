#include "common/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

#include "common/tls/ssl_util.h"

namespace weir::tls {
namespace {

std::string alpn_wire(const std::vector<std::string>& protos) {
  std::string out;
  for (const std::string& p : protos) {
    out.push_back(static_cast<char>(p.size()));
    out += p;
  }
  return out;
}

int alpn_select_cb(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                   unsigned int inlen, void* arg) {
  const std::string& ours = *static_cast<const std::string*>(arg);
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, reinterpret_cast<const unsigned char*>(ours.data()),
                            static_cast<unsigned int>(ours.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no protocol in common: go on without ALPN
  }
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

int servername_cb(SSL* ssl, int*, void* arg) {
  const auto* fc = static_cast<const FrontContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  SSL_CTX* want = fc->select(lower(name));
  if (want != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, want);
  return SSL_TLSEXT_ERR_OK;
}

// verify: optional: the handshake goes on whatever the verdict; ssl_c_verify tells.
int verify_optional_cb(int, X509_STORE_CTX*) {
  return 1;
}

bool readable(const std::string& path, std::string* why) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) {
    *why = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::fclose(f);
  return true;
}

bool load_crls(X509_STORE* store, const std::string& path, std::string* error) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    *error = "cannot read " + path + ": " + std::strerror(errno ? errno : ENOENT);
    return false;
  }
  int count = 0;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    ++count;
  }
  ERR_clear_error();
  if (count == 0) {
    *error = path + " holds no PEM revocation list";
    return false;
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  return true;
}

int new_session_cb(SSL* ssl, SSL_SESSION* sess);
int g_slot_index = -1;
std::once_flag g_slot_once;
int slot_index() {
  std::call_once(g_slot_once, [] {
    g_slot_index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  });
  return g_slot_index;
}

int new_session_cb(SSL* ssl, SSL_SESSION* sess) {
  auto* slot = static_cast<SessionSlot*>(SSL_get_ex_data(ssl, slot_index()));
  if (!slot) return 0;
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  slot->replace(sess, name ? std::string_view(name) : std::string_view());
  return 1;  // the slot holds the reference
}

}  // namespace

void Problems::error(const SourceMark& m, std::string msg) const {
  if (errors) errors->push_back({file, m.line, m.column, std::move(msg)});
}
void Problems::warn(const SourceMark& m, std::string msg) const {
  if (warnings) warnings->push_back({file, m.line, m.column, std::move(msg)});
}

// ---- FrontContext -----------------------------------------------------------

int ocsp_status_cb(SSL* ssl, void* arg) {
  const auto* fc = static_cast<const FrontContext*>(arg);
  X509* leaf = SSL_get_certificate(ssl);
  auto it = fc->ocsp_.find(leaf);
  if (it == fc->ocsp_.end()) return SSL_TLSEXT_ERR_NOACK;
  auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(it->second.size()));
  if (!copy) return SSL_TLSEXT_ERR_NOACK;
  std::memcpy(copy, it->second.data(), it->second.size());
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(it->second.size()));
  return SSL_TLSEXT_ERR_OK;
}

// What both sides set the same way: versions, options, I/O modes, ciphers.
// `Cfg` is TlsBindConfig or TlsServerConfig. False when a setting is refused.
template <typename Cfg>
bool common_settings(SSL_CTX* ctx, const Cfg& cfg, uint64_t extra_options, const std::string& what,
                     const Problems& p) {
  SSL_CTX_set_min_proto_version(ctx, cfg.min_version);
  SSL_CTX_set_max_proto_version(ctx, cfg.max_version);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_IGNORE_UNEXPECTED_EOF | extra_options);
  // Partial and moving writes: Connection::writev's contract; buffers released
  // while a connection is idle.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(ctx, 1);
  bool ok = true;
  if (!cfg.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, cfg.ciphers.c_str()) != 1) {
    p.error(cfg.mark, what + ": ciphers " + cfg.ciphers + ": " + openssl_error());
    ok = false;
  }
  if (!cfg.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, cfg.ciphersuites.c_str()) != 1) {
    p.error(cfg.mark, what + ": ciphersuites " + cfg.ciphersuites + ": " + openssl_error());
    ok = false;
  }
  return ok;
}

struct FrontBuilder {
  FrontContext& fc;
  const Problems& p;
  const std::string what;

  // Everything but the certificates; the same on every context of the bind.
  SSL_CTX* new_ctx() {
    const TlsBindConfig& cfg = fc.cfg_;
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
      p.error(cfg.mark, what + ": " + openssl_error());
      return nullptr;
    }
    fc.ctxs_.push_back(ctx);
    uint64_t opts = SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (!cfg.session_tickets) opts |= SSL_OP_NO_TICKET;
    bool ok = common_settings(ctx, cfg, opts, what, p);
    if (!cfg.curves.empty() && SSL_CTX_set1_groups_list(ctx, cfg.curves.c_str()) != 1) {
      p.error(cfg.mark, what + ": curves " + cfg.curves + ": " + openssl_error());
      ok = false;
    }
    // Sessions: the id context names what a resumption skips, the client
    // certificate check: binds (and cluster nodes) with the same verify
    // settings resume each other's sessions, a bind that checks clients never
    // resumes a session made without that check.
    std::string what_is_checked = "weir verify=" + std::to_string(static_cast<int>(cfg.verify)) +
                                  " ca=" + cfg.ca_file + " crl=" + cfg.crl_file;
    unsigned char sid[32];
    unsigned int sid_len = 0;
    EVP_Digest(what_is_checked.data(), what_is_checked.size(), sid, &sid_len, EVP_sha256(),
               nullptr);
    SSL_CTX_set_session_id_context(ctx, sid,
                                   std::min<unsigned int>(sid_len, SSL_MAX_SID_CTX_LENGTH));
    SSL_CTX_set_timeout(ctx, static_cast<long>(cfg.session_timeout / 1000));
    if (cfg.session_cache > 0) {
      SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
      SSL_CTX_sess_set_cache_size(ctx, cfg.session_cache);
    } else {
      SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (cfg.session_tickets) {
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
      SSL_CTX_set_num_tickets(ctx, 1);
    } else {
      SSL_CTX_set_num_tickets(ctx, 0);
    }
    if (!fc.alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, &fc.alpn_wire_);
    SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(servername_cb));
    SSL_CTX_set_tlsext_servername_arg(ctx, &fc);
    SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB,
                          reinterpret_cast<void (*)()>(ocsp_status_cb));
    SSL_CTX_set_tlsext_status_arg(ctx, &fc);
    if (cfg.verify != TlsBindConfig::Verify::kNone) {
      std::string why;
      if (!readable(cfg.ca_file, &why)) {
        p.error(cfg.mark, what + ": ca_file: " + why);
        ok = false;
      } else if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr) != 1) {
        p.error(cfg.mark, what + ": ca_file " + cfg.ca_file + ": " + openssl_error());
        ok = false;
      } else if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.ca_file.c_str())) {
        SSL_CTX_set_client_CA_list(ctx, names);
      }
      ERR_clear_error();
      if (!cfg.crl_file.empty()) {
        std::string err;
        if (!load_crls(SSL_CTX_get_cert_store(ctx), cfg.crl_file, &err)) {
          p.error(cfg.mark, what + ": crl_file: " + err);
          ok = false;
        }
      }
      int mode = SSL_VERIFY_PEER;
      if (cfg.verify == TlsBindConfig::Verify::kRequired) {
        SSL_CTX_set_verify(ctx, mode | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      } else {
        SSL_CTX_set_verify(ctx, mode, verify_optional_cb);
      }
    }
    return ok ? ctx : nullptr;
  }
};

std::shared_ptr<FrontContext> FrontContext::build(const TlsBindConfig& cfg, Mode mode,
                                                  const std::string& label, const Problems& p) {
  std::shared_ptr<FrontContext> fc(new FrontContext());
  fc->cfg_ = cfg;
  std::vector<std::string> protos = cfg.alpn;
  if (!cfg.alpn_set && mode == Mode::kHttp) protos = {"http/1.1"};
  fc->alpn_wire_ = alpn_wire(protos);
  const std::string& what = label;
  FrontBuilder b{*fc, p, what};

  // Every certificate file, in order, the default first when it is named.
  std::vector<std::string> files;
  bool ok = true;
  for (const std::string& entry : cfg.certificates) {
    std::string err;
    if (!expand_entry(entry, &files, &err)) {
      p.error(cfg.mark, what + ": certificates: " + err);
      ok = false;
    }
  }
  if (!cfg.default_certificate.empty() &&
      std::find(files.begin(), files.end(), cfg.default_certificate) == files.end()) {
    files.insert(files.begin(), cfg.default_certificate);
  }
  std::vector<LoadedCert> certs;
  std::set<std::string> seen;
  for (const std::string& f : files) {
    if (!seen.insert(f).second) continue;
    auto c = load_cert_file(f, cfg.mark, what + ": certificates", p);
    if (!c) {
      ok = false;
      continue;
    }
    certs.push_back(std::move(*c));
  }
  if (!ok) return nullptr;
  if (certs.empty()) {
    p.error(cfg.mark, what + ": no certificate to serve");
    return nullptr;
  }

  // Group the certificates by the names they serve; a group's context holds one
  // certificate per key type.
  std::map<std::string, SSL_CTX*> groups;  // sorted names -> context
  std::map<std::string, std::set<std::string>> group_types;
  std::string default_file =
      cfg.default_certificate.empty() ? certs[0].file : cfg.default_certificate;
  for (LoadedCert& c : certs) {
    std::vector<std::string> names = c.info.names;
    std::sort(names.begin(), names.end());
    std::string key;
    for (const std::string& n : names) key += n + "\n";
    if (key.empty()) key = "\n" + c.file;  // nameless: its own group
    SSL_CTX*& ctx = groups[key];
    if (!ctx) {
      ctx = b.new_ctx();
      if (!ctx) return nullptr;
    }
    if (!group_types[key].insert(c.info.key_type).second) {
      p.warn(cfg.mark, what + ": " + c.file + ": another " + c.info.key_type +
                           " certificate already serves the same names; this one is not used");
      continue;
    }
    if (SSL_CTX_use_cert_and_key(ctx, c.leaf.get(), c.key.get(), c.chain, 1) != 1) {
      p.error(cfg.mark, what + ": " + c.file + ": " + openssl_error());
      return nullptr;
    }
    if (!c.ocsp.empty()) {
      // SSL_CTX_use_cert_and_key keeps its own reference to the same X509.
      fc->ocsp_[c.leaf.get()] = c.ocsp;
      X509_up_ref(c.leaf.get());  // keep the pointer valid as a key (freed with the contexts)
    }
    for (const std::string& n : c.info.names) {
      if (n.size() > 2 && n[0] == '*' && n[1] == '.') {
        fc->wildcard_.emplace(n.substr(2), ctx);
      } else {
        fc->exact_.emplace(n, ctx);
      }
    }
    if (c.file == default_file) fc->default_ = ctx;
    fc->certs_.push_back(c.info);
  }
  if (!fc->default_) fc->default_ = fc->ctxs_.front();
  return fc;
}

FrontContext::~FrontContext() {
  for (auto& [x, der] : ocsp_) X509_free(const_cast<X509*>(x));
  for (SSL_CTX* c : ctxs_) SSL_CTX_free(c);
}

SSL_CTX* FrontContext::select(std::string_view name) const {
  if (!exact_.empty()) {
    auto it = exact_.find(std::string(name));
    if (it != exact_.end()) return it->second;
  }
  size_t dot = name.find('.');
  if (dot != std::string_view::npos && !wildcard_.empty()) {
    auto it = wildcard_.find(std::string(name.substr(dot + 1)));
    if (it != wildcard_.end()) return it->second;
  }
  return default_;
}

SSL* FrontContext::new_ssl() const {
  SSL* ssl = SSL_new(default_);
  if (!ssl) {
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

// ---- BackContext ------------------------------------------------------------

std::shared_ptr<BackContext> BackContext::build(const TlsServerConfig& cfg,
                                                const std::string& label, const Problems& p) {
  std::shared_ptr<BackContext> bc(new BackContext());
  bc->cfg_ = cfg;
  const std::string& what = label;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    p.error(cfg.mark, what + ": " + openssl_error());
    return nullptr;
  }
  bc->ctx_ = ctx;
  bool ok = common_settings(ctx, cfg, 0, what, p);
  if (cfg.verify) {
    if (!cfg.ca_file.empty()) {
      std::string why;
      if (!readable(cfg.ca_file, &why)) {
        p.error(cfg.mark, what + ": ca_file: " + why);
        ok = false;
      } else if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr) != 1) {
        p.error(cfg.mark, what + ": ca_file " + cfg.ca_file + ": " + openssl_error());
        ok = false;
      }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      ERR_clear_error();
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  std::string why;
  if (!cfg.cert.empty() && !readable(cfg.cert, &why)) {
    p.error(cfg.mark, what + ": cert: " + why);
    ok = false;
  } else if (!cfg.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg.cert.c_str()) != 1) {
      p.error(cfg.mark, what + ": cert " + cfg.cert + ": " + openssl_error());
      ok = false;
    } else if (SSL_CTX_use_PrivateKey_file(ctx, cfg.cert.c_str(), SSL_FILETYPE_PEM) != 1 &&
               SSL_CTX_use_PrivateKey_file(ctx, (cfg.cert + ".key").c_str(), SSL_FILETYPE_PEM) !=
                   1) {
      ERR_clear_error();
      p.error(cfg.mark, what + ": cert " + cfg.cert + ": no private key in the file nor in " +
                            cfg.cert + ".key");
      ok = false;
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
      ERR_clear_error();
      p.error(cfg.mark,
              what + ": cert " + cfg.cert + ": the private key does not match the certificate");
      ok = false;
    }
  }
  if (!cfg.alpn.empty()) {
    std::string wire = alpn_wire(cfg.alpn);
    SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size()));
  }
  // Sessions go to the slot of the connection's server and thread.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
  if (!ok) return nullptr;
  return bc;
}

BackContext::~BackContext() {
  SSL_CTX_free(ctx_);
}

std::string BackContext::sni(cond::FetchContext& f) const {
  if (cfg_.sni_text.empty()) return {};
  if (cfg_.sni.is_constant()) return cfg_.sni.text;
  std::string name = cfg_.sni.render(f);
  if (!name.empty() && name.front() != '[') {
    size_t colon = name.rfind(':');
    if (colon != std::string::npos) name.resize(colon);
  }
  return name;
}

SSL* BackContext::new_ssl(std::string_view sni, SessionSlot* slot) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) {
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  std::string name(sni);
  if (!name.empty()) {
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name.data());
  }
  if (cfg_.verify) {
    const std::string& check = cfg_.verify_name.empty() ? name : cfg_.verify_name;
    if (!check.empty()) SSL_set1_host(ssl, check.c_str());
  }
  if (SSL_SESSION* session = slot->get(sni)) SSL_set_session(ssl, session);
  SSL_set_ex_data(ssl, slot_index(), slot);  // new sessions go there
  ERR_clear_error();
  return ssl;
}

SessionSlot::~SessionSlot() {
  SSL_SESSION_free(session_);
}

void SessionSlot::replace(SSL_SESSION* s, std::string_view sni) {
  if (session_) SSL_SESSION_free(session_);
  session_ = s;
  sni_.assign(sni);
}

// ---- check_config -----------------------------------------------------------

bool check_config(const Config& cfg, std::vector<ConfigError>* errors,
                  std::vector<ConfigError>* warnings) {
  Problems p{cfg.source_name, errors, warnings};
  size_t before = errors->size();
  for (const FrontendConfig& fe : cfg.frontends) {
    for (const BindConfig& b : fe.binds) {
      if (b.tls.enabled) FrontContext::build(b.tls, fe.mode, bind_label(fe, b), p);
    }
  }
  for (const BackendConfig& be : cfg.backends) {
    if (be.default_tls.enabled) BackContext::build(be.default_tls, backend_label(be), p);
    for (const ServerConfig& s : be.servers) {
      // A server that only inherits the backend's settings was checked with them.
      if (s.tls.enabled && !same_mark(s.tls.mark, be.default_tls.mark)) {
        BackContext::build(s.tls, server_label(be, s), p);
      }
    }
  }
  if (!cfg.global.tls_ticket_secret_file.empty()) {
    std::string secret, err;
    if (!read_secret_file(cfg.global.tls_ticket_secret_file, &secret, &err)) {
      p.error(cfg.global.tls_ticket_secret_mark, "global: tls_ticket_secret_file: " + err);
    }
  }
  return errors->size() == before;
}

std::string bind_label(const FrontendConfig& fe, const BindConfig& b) {
  return "frontend '" + fe.name + "': bind " + b.address_text + ": tls";
}
std::string backend_label(const BackendConfig& be) {
  return "backend '" + be.name + "': tls";
}
std::string server_label(const BackendConfig& be, const ServerConfig& s) {
  return "server '" + s.name + "' of backend '" + be.name + "': tls";
}
bool same_mark(const SourceMark& a, const SourceMark& b) {
  return a.line == b.line && a.column == b.column;
}

}  // namespace weir::tls
