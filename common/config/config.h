#pragma once
// The configuration model: what a validated weir.yaml means, with every default
// resolved, so that the rest of weir never looks at YAML. Built by
// load_config_*() (load/loader.cpp and a file per section in load/) from the
// same bytes in the master (to validate) and in each worker (to run).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/address.h"
#include "common/cond/condition.h"
#include "common/config/actions.h"
#include "common/config/balance.h"

namespace weir::stick {
class Table;
}

namespace weir {

enum class Mode {
  kHttp,  // HTTP/1.1 request/response proxying
  kTcp,   // raw bidirectional byte forwarding
};

// Which idle server connection an http request may take (a backend's
// `http_reuse`; doc/configuration.md). In every mode a request the server
// cannot have seen (idempotent, no body, no byte of response yet) that meets a
// reused connection the server closed is replayed once on a new connection.
enum class HttpReuse : unsigned char {
  kNever,   // only one this client connection opened itself (a private connection)
  kSafe,    // a client connection's first request: a new one; its later ones: any
  kAlways,  // any idle connection to the server, whichever client it served (the default)
};

enum class LogTarget {
  kStdout,  // the process's standard output
  kStderr,  // the process's standard error
  kFile,    // a file opened in append mode (path in LogSink::path)
  kSyslog,  // a syslog server: UDP (LogSink::syslog_addr) or a Unix datagram socket (path)
};

enum class LogFormat {
  kText,    // kHttp for http frontends, kTcp for tcp frontends
  kHttp,    // HAProxy's httplog layout (logfmt::kHttpFormat)
  kTcp,     // HAProxy's tcplog layout (logfmt::kTcpFormat)
  kJson,    // one JSON object per line
  kCustom,  // LogSink::custom, a format string with %-variables
};

enum class SyslogFraming {
  kRfc3164,  // <PRI>Mmm dd hh:mm:ss host tag[pid]: message
  kRfc5424,  // <PRI>1 timestamp host tag pid - - message
};

struct SourceMark {
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
};

enum class ApiLevel {
  kUser,      // read-only commands
  kOperator,  // + server state and weight changes
  kAdmin,     // everything
};

// One runtime-API endpoint: a Unix socket (path) or a TCP address.
struct RuntimeApiEndpoint {
  std::string path;  // Unix socket when non-empty
  SockAddr addr;     // TCP otherwise
  ApiLevel level = ApiLevel::kAdmin;
  uint32_t mode = 0600;  // Unix socket permissions
  std::string owner;     // Unix socket owner (user name); empty: the master's user
  std::string group;     // Unix socket group; empty: the master's group
  SourceMark mark;       // the address value
  // A stable key across reloads ("unix:/run/weir/admin.sock", "tcp:127.0.0.1:9999").
  std::string key() const;
};

struct LogSink {
  LogTarget target = LogTarget::kStdout;
  std::string path;  // kFile: the file; kSyslog: a Unix datagram socket (empty for UDP)
  LogFormat format = LogFormat::kText;
  std::string custom;  // kCustom: the format string
  // kSyslog only.
  SockAddr syslog_addr;  // UDP server when path is empty
  SyslogFraming framing = SyslogFraming::kRfc3164;
  int facility = 16;         // local0
  std::string tag = "weir";  // the program name in each message
  SourceMark mark;           // the target value
};

// Every timeout, in milliseconds, resolved (built-in default < defaults < section).
// 0 means "no timeout".
struct Timeouts {
  int64_t connect = 5000;
  int64_t client = 30000;
  int64_t server = 30000;
  int64_t queue = 5000;
  int64_t http_request = 10000;
  int64_t http_keep_alive = 5000;
  int64_t tunnel = 3600000;
};

// TLS versions as OpenSSL numbers them (TLS1_2_VERSION = 0x0303).
inline constexpr int kTls10 = 0x0301, kTls11 = 0x0302, kTls12 = 0x0303, kTls13 = 0x0304;

// `tls:` of a bind: weir terminates TLS (doc/tls.md).
struct TlsBindConfig {
  bool enabled = false;
  std::vector<std::string> certificates;  // PEM files and directories, as written
  std::string default_certificate;        // empty: the first certificate loaded
  std::vector<std::string> alpn;          // in preference order; empty: no ALPN
  bool alpn_set = false;                  // false: http/1.1 in http mode, none in tcp mode
  int min_version = kTls12;
  int max_version = kTls13;
  std::string ciphers;       // TLS <= 1.2, OpenSSL syntax; empty: OpenSSL's default
  std::string ciphersuites;  // TLS 1.3
  std::string curves;        // key-exchange groups
  bool session_tickets = true;
  uint32_t session_cache = 20000;  // sessions kept for id-based resumption; 0: off
  int64_t session_timeout = 300000;
  enum class Verify : unsigned char { kNone, kOptional, kRequired } verify = Verify::kNone;
  std::string ca_file;               // CAs of client certificates
  std::string crl_file;              // revocation lists of client certificates
  bool client_cert_headers = false;  // http: X-Client-Cert-* toward servers
  SourceMark mark;                   // the `tls:` key
};

// `tls:` of a server or backend: weir connects to the server with TLS.
struct TlsServerConfig {
  bool enabled = false;
  bool verify = true;       // the server's certificate must chain to ca_file (and name)
  std::string ca_file;      // empty: OpenSSL's default store
  std::string verify_name;  // empty: the SNI (when there is one)
  std::string sni_text;     // as written; empty: no SNI
  cond::ValueTemplate sni;  // sni_text compiled
  std::vector<std::string> alpn;
  std::string cert;  // client certificate (and key) PEM
  int min_version = kTls12;
  int max_version = kTls13;
  std::string ciphers;
  std::string ciphersuites;
  SourceMark mark;
};

// `accept_proxy:` of a bind: every connection starts with a PROXY protocol
// header (v1 or v2) from a balancer in front, naming the real client
// (doc/configuration.md, "The PROXY protocol").
struct AcceptProxyConfig {
  bool enabled = false;
  std::vector<cond::IpNetwork> trusted;  // who may send one; empty: any peer
  int64_t timeout = 0;  // ms to wait for the header; 0: the frontend's (see header_timeout)
  // The wait the header gets: `timeout`, else the frontend's http_request
  // timeout (http mode) or client timeout (tcp mode, or http_request: 0);
  // 0: none (the frontend's timeouts are off).
  int64_t header_timeout(Mode mode, const Timeouts& t) const {
    if (timeout > 0) return timeout;
    if (mode == Mode::kHttp && t.http_request > 0) return t.http_request;
    return t.client;
  }
};

struct BindConfig {
  std::string address_text;  // as written
  SockAddr addr;
  int backlog = 1024;
  bool v6only = true;  // only meaningful for IPv6 binds; true by default for [::]
  TlsBindConfig tls;
  AcceptProxyConfig accept_proxy;
  SourceMark mark;
  // A stable key that identifies this listener across reloads ("tcp:[::]:8080").
  std::string key() const;
};

// The HTML statistics page of an http frontend (and its CSV export at uri + ";csv").
struct StatsPageConfig {
  std::string uri;                        // path answered by weir; empty: no stats page
  int64_t refresh_ms = 0;                 // auto-refresh period (whole seconds); 0: no auto-refresh
  std::string realm = "weir statistics";  // basic-auth realm
  std::vector<std::pair<std::string, std::string>> users;  // name, password; empty: no auth
  bool hide_version = false;                               // leave weir's version out of the page
  SourceMark mark;
};

// The operands of the stick-table actions (track, sc_inc_gpc, sc_clr_gpc,
// sc_set_gpt; worker/stick/actions.cpp), in http and tcp_request rules.
struct StickAction {
  std::shared_ptr<stick::Table> table;    // track: the table
  cond::SampleExpr key;                   // track: the key sample
  int counter = 0;                        // the tracked counter, 0..2 (HAProxy's sc0..sc2)
  uint32_t index = 0;                     // the element of gpc / gpt
  std::optional<cond::SampleExpr> value;  // sc_set_gpt: a sample, else `constant`
  int64_t constant = 0;
};

// One rule of `http_request:` / `http_response:` (in order; the first terminal
// rule ends the list). Its action is a registered HttpActionDef (actions.h); the
// fields below are what the actions read, each filled by the actions named.
struct HttpRule {
  const HttpActionDef* def = nullptr;  // the action: its name, parse and run
  int status = 0;                      // deny / return / tarpit / redirect / set_status
  std::string reason;                  // set_status
  std::string body;                    // deny / return / tarpit (already read from `file`)
  std::string content_type;            // deny / return
  enum class Redirect : unsigned char {
    kLocation,  // `value` is the Location
    kPrefix,    // `value` followed by the request's path (and query)
    kScheme     // `value` "://" the request's Host and target
  } redirect = Redirect::kLocation;
  bool drop_query = false;
  std::string name;                             // header or variable name
  cond::ValueTemplate value;                    // header value, path, location, backend, ...
  std::shared_ptr<const cond::Regex> match;     // replace_header / replace_value
  std::string replacement;                      // replace_header / replace_value (\1 groups)
  int64_t delay = 0;                            // tarpit, ms
  size_t capture_len = 64;                      // capture: longest value kept
  std::string backend;                          // use_backend with a constant name
  std::shared_ptr<const StickAction> stick;     // track, sc_inc_gpc, sc_clr_gpc, sc_set_gpt
  std::shared_ptr<const cond::Condition> cond;  // null: always
  bool unless = false;                          // the rule applies when cond is false
  SourceMark mark;
};

// One rule of `tcp_request:`; its action is a registered TcpActionDef (actions.h).
struct TcpRule {
  enum class Stage : unsigned char {
    kConnection,  // once the connection is accepted
    kContent,     // tcp mode: then, possibly after inspect_delay
  } stage = Stage::kConnection;
  const TcpActionDef* def = nullptr;         // the action: its name, parse and run
  std::string backend;                       // use_backend
  std::shared_ptr<const StickAction> stick;  // track, sc_inc_gpc, sc_clr_gpc, sc_set_gpt
  std::shared_ptr<const cond::Condition> cond;
  bool unless = false;
  SourceMark mark;
};

// Rules of a frontend or a backend.
struct RuleSet {
  std::vector<HttpRule> http_request;
  std::vector<HttpRule> http_response;
  std::vector<TcpRule> tcp_request;
  std::map<int, std::string> errorfiles;  // status -> body of weir's own responses
  bool empty() const {
    return http_request.empty() && http_response.empty() && tcp_request.empty() &&
           errorfiles.empty();
  }
};

struct FrontendConfig {
  std::string name;
  Mode mode = Mode::kHttp;
  std::vector<BindConfig> binds;
  uint32_t maxconn = 0;  // 0: only global.maxconn applies
  std::string default_backend;
  bool forwardfor = false;  // add X-Forwarded-For with the client address
  bool log = true;          // send one access-log line per request/connection
  std::string metrics_uri;  // http mode: path answered by weir with Prometheus metrics
  StatsPageConfig stats;    // http mode: the HTML stats page
  Timeouts timeouts;        // client, http_request, http_keep_alive are used here
  RuleSet rules;            // acls are compiled into the rules' conditions
  // http mode: forward CONNECT requests (else 501) and tunnel after a 2xx answer.
  bool allow_connect = false;
  // tcp mode: how long tcp_request content rules may wait for the client's first
  // bytes (a TLS ClientHello); 0: they run at once.
  int64_t inspect_delay = 0;
  SourceMark mark;
};

// Active health checks of a server (`check:` in a backend, for all its servers,
// and/or in a server, overriding the backend's).
struct HealthCheckConfig {
  bool enabled = false;
  enum class Type { kTcp, kHttp } type = Type::kTcp;
  // http
  std::string method = "GET";
  std::string path = "/";
  std::string host;  // Host header; empty: the server's address
  int status_min = 200;
  int status_max = 399;
  std::string body;             // http: an ECMAScript regex the body must match; empty: any
  bool disable_on_404 = false;  // http: a 404 puts the server in NOLB instead of DOWN
  // Timing, ms. fastinter: while the state is changing; downinter: while down.
  int64_t inter = 2000;
  int64_t fastinter = 0;  // 0: inter
  int64_t downinter = 0;  // 0: inter
  int64_t timeout = 0;    // 0: inter (capped at 5s)
  int rise = 2;           // consecutive successes to be UP again
  int fall = 3;           // consecutive failures to be DOWN
  uint16_t port = 0;      // check this port instead of the server's
  // on_marked_down: shutdown_sessions: a server going DOWN also ends the
  // requests and connections in progress on it.
  bool shutdown_sessions_on_down = false;
  // on_marked_up: shutdown_backup_sessions: a normal server coming UP ends the
  // sessions on the backend's backup servers, so traffic returns at once.
  bool shutdown_backup_sessions_on_up = false;
  std::vector<std::pair<std::string, std::string>> headers;  // http: extra request headers
  // Check address instead of the server's (port: `port`, else the server's).
  std::optional<SockAddr> addr;
  // tcp: a sequence of steps after the connection (empty: connecting is the check).
  struct TcpStep {
    enum class Kind { kSend, kExpectString, kExpectRegex } kind = Kind::kSend;
    std::string data;  // bytes to send, the string to find, or the regex (ECMAScript)
  };
  std::vector<TcpStep> tcp_steps;
  // Passive checks: errors seen in live traffic count against the server.
  enum class Observe { kNone, kLayer4, kLayer7 } observe = Observe::kNone;
  int error_limit = 10;  // consecutive errors that trigger on_error
  enum class OnError {
    kFastinter,
    kFailCheck,
    kSuddenDeath,
    kMarkDown
  } on_error = OnError::kFailCheck;
};

// `agent:` of a server: a TCP probe to an agent whose one-line reply sets the
// server's weight, maxconn and state.
struct AgentConfig {
  bool enabled = false;
  uint16_t port = 0;             // required
  std::optional<SockAddr> addr;  // default: the server's address
  int64_t inter = 2000;          // ms between probes
  int64_t timeout = 0;           // 0: inter (capped at 5s)
  std::string send;              // sent after connecting (e.g. "status\n"); empty: nothing
};

// `send_proxy:` of a server (or a backend's default): the PROXY protocol
// header weir writes first on each connection to the server.
struct SendProxyConfig {
  int version = 0;  // 0: none; 1 (text) or 2 (binary)
  // v2 TLVs: the client's ALPN, its SNI (authority), its TLS block, the
  // request's unique id (http mode).
  bool alpn = false, authority = false, ssl = false, unique_id = false;
  // check_send_proxy: health checks send one too (v1: the check's own
  // addresses; v2: LOCAL). Unset: they do when traffic does and the check goes
  // to the server's own address and port.
  std::optional<bool> checks;
  bool operator==(const SendProxyConfig&) const = default;
};

struct ServerConfig {
  std::string name;
  std::string address_text;  // as written
  SockAddr addr;
  uint32_t weight = 1;    // 0..256
  uint32_t maxconn = 0;   // most concurrent requests (http) or connections (tcp); 0: no limit
  uint32_t maxqueue = 0;  // most requests waiting in this server's own queue; 0: no limit
  uint32_t minconn = 0;   // with the backend's fullconn: the low end of a dynamic maxconn
  int64_t slowstart = 0;  // ms over which a returning server ramps its weight and maxconn up
  bool backup = false;    // takes traffic only when no normal server is usable
  HealthCheckConfig check;
  AgentConfig agent;
  TlsServerConfig tls;
  SendProxyConfig send_proxy;
  // Its value for the backend's cookie persistence; empty: derived from the name
  // (the name itself, or an opaque hash with `dynamic`).
  std::string cookie;
  SourceMark mark;
};

// One rule of a backend's `stick:` (persistence on a stick table that stores
// server_key; doc/configuration.md, "Sticky sessions"). At least one key is set.
struct StickRule {
  std::shared_ptr<stick::Table> table;
  std::optional<cond::SampleExpr> match;           // looked up on the request
  std::optional<cond::SampleExpr> store;           // stored from the request
  std::optional<cond::SampleExpr> store_response;  // stored from the response
  std::shared_ptr<const cond::Condition> cond;     // null: always
  bool unless = false;
  SourceMark mark;
};

// How weir's persistence cookie is made (`cookie:` of a backend).
enum class CookieMode : unsigned char {
  kInsert,   // weir sets a cookie of its own
  kRewrite,  // the application's cookie takes the server's value
  kPrefix,   // the server's value goes in front of the application's cookie value
};

struct CookieConfig {
  std::string name;  // empty: no cookie persistence
  CookieMode mode = CookieMode::kInsert;
  bool indirect = false;  // insert: the server never sees the cookie
  bool nocache = false;   // insert: Cache-Control: private where weir sets it
  bool httponly = false;
  bool secure = false;
  std::string samesite;              // "", "Strict", "Lax" or "None"
  std::vector<std::string> domains;  // the one the request's Host is in goes in Domain=
  std::vector<std::string> attrs;    // appended as written ("; Partitioned")
  int64_t maxidle_ms = 0;            // insert: a cookie idle this long is ignored; 0: never
  int64_t maxlife_ms = 0;            // insert: a cookie this old is ignored; 0: never
  bool dynamic = false;              // servers without `cookie:` get a hash, not their name
  std::string dynamic_key;           // the hash's key; empty: the backend's name
  SourceMark mark;
};

struct BackendConfig {
  std::string name;
  Mode mode = Mode::kHttp;
  BalanceConfig balance;
  bool redispatch = true;    // a retry goes to another server (false: the same one)
  bool all_backups = false;  // spread over every backup server, not only the first
  uint32_t fullconn = 0;     // backend load at which minconn servers reach maxconn; 0: auto
  std::vector<ServerConfig> servers;  // in file order
  Timeouts timeouts;                  // connect, server, queue, tunnel are used here
  int retries = 3;                    // extra connection attempts after the first
  // http: a client that closes its side (FIN) while its request waits for the
  // response headers has given up: the request is cancelled (the server
  // connection is closed, the slot or queue place freed). false: a FIN is a
  // half-close and the request runs to its end (HAProxy's default). A reset
  // always cancels.
  bool abortonclose = true;
  HttpReuse http_reuse = HttpReuse::kAlways;  // http mode; tcp connections are never reused
  // The backend's `check:` and `agent:`: every server's starting point, also
  // for servers added at runtime.
  HealthCheckConfig default_check;
  AgentConfig default_agent;
  TlsServerConfig default_tls;         // `tls:` of the backend: every server's starting point
  SendProxyConfig default_send_proxy;  // `send_proxy:`, `check_send_proxy:`: the same
  RuleSet rules;  // http_request runs after the frontend's, http_response before it
  // Persistence (sticky sessions): stick rules and the cookie; a stuck client whose
  // server is DOWN, in maint or gone is balanced again (true) or answered 503.
  std::vector<StickRule> stick_rules;
  CookieConfig cookie;
  bool stick_redispatch = true;
  SourceMark mark;
};

struct GlobalConfig {
  int threads = 1;  // event loops in each worker, 1..64
  // Client connections open at once, all frontends together; 0: not set, the
  // largest value up to kDefaultMaxconn that the open-file limit holds
  // (common/base/fd_budget.h). Workers replace it by the value they run with.
  uint32_t maxconn = 0;
  std::string user;  // drop to this user after loading (when started as root)
  std::string group;
  std::string pidfile;  // master pid, written at start (the -p flag overrides)
  SourceMark pidfile_mark;
  std::vector<LogSink> logs;         // access-log destinations
  size_t bufsize = 16384;            // size of one I/O buffer; bounds a request/response head
  size_t max_headers = 100;          // header fields allowed in one head (1..http::kMaxHeaders)
  size_t splice_threshold = 65536;   // tcp mode: switch a direction to splice() after this
  int64_t hard_stop_after = 900000;  // ms a draining worker may live; 0 = unbounded
  int max_old_generations = 10;      // draining generations alive at once; oldest forced out
  std::string master_socket;         // master CLI Unix socket; empty = none
  SourceMark master_socket_mark;
  std::string state_file;  // server states kept across restarts; empty = none
  SourceMark state_file_mark;
  // The peers agent keeps the stick tables here across restarts (tables.state);
  // empty = none (doc/stick-tables.md, "Reloads, restarts and the peers agent").
  std::string state_dir;
  SourceMark state_dir_mark;
  int64_t state_save_interval = 60000;          // ms between saves of state_dir; 0 = only at stop
  std::vector<RuntimeApiEndpoint> runtime_api;  // where the workers answer runtime commands
  std::string tls_ticket_secret_file;  // TLS ticket keys from this secret; empty: random per master
  SourceMark tls_ticket_secret_mark;
};

// `peers:` (doc/peers.md): the cluster this node belongs to. The peers agent
// links the nodes listed here over ZeroMQ with CURVE (every node has a key
// pair; a node accepts only the public keys listed for the others).
struct PeerNode {
  std::string name;
  std::string address;  // host:port as written: where this node's agent listens
  SockAddr addr;
  // Z85 public keys (40 characters): one, or two while the node rotates its key.
  std::vector<std::string> public_keys;
  SourceMark mark;
};

struct PeersConfig {
  std::string cluster;    // empty: no peers section (a single node)
  std::string local;      // this node's name (default: the host name)
  uint32_t local_id = 0;  // stick::node_id(local): the tie-break of last-writer-wins stamps
  SockAddr bind;          // where this node's agent listens (default: its own address)
  std::string secret_key_file;
  std::string secret_key;       // Z85, read from secret_key_file when the configuration is loaded
  std::string public_key;       // Z85, derived from the secret key
  std::vector<PeerNode> nodes;  // every node of the cluster, this one included, in file order
  // How long a node may stay unreachable before the connections it counted
  // in conn_cur no longer count here.
  int64_t dead_after_ms = 30000;
  SourceMark mark;
  bool enabled() const { return !cluster.empty(); }
  const PeerNode* node(std::string_view name) const {
    for (const PeerNode& n : nodes) {
      if (n.name == name) return &n;
    }
    return nullptr;
  }
};

struct Config {
  std::string source_name;  // file name used in messages
  GlobalConfig global;
  std::vector<FrontendConfig> frontends;  // in file order
  std::vector<BackendConfig> backends;    // in file order
  // stick_tables:, in file order: each table's definition and its entries
  // (common/stick/table.h), made empty when the configuration is loaded.
  std::vector<std::shared_ptr<stick::Table>> stick_tables;
  PeersConfig peers;

  const BackendConfig* find_backend(std::string_view name) const;
  int backend_index(std::string_view name) const;  // -1 when absent
};

struct ConfigError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
  // "file:line:column: message" (or "file: message" when no position is known).
  std::string to_string() const;
  // The same with "warning: " before the message.
  std::string to_warning_string() const;
};

// One line of `weir -c` or of the master's log about the configuration.
struct ConfigMessage {
  std::string text;  // ConfigError::to_string() or to_warning_string()
  bool warning = false;
};
// Errors and warnings together, in file order (what `weir -c` prints).
std::vector<ConfigMessage> in_file_order(const std::vector<ConfigError>& errors,
                                         const std::vector<ConfigError>& warnings);

struct LoadResult {
  std::optional<Config> config;       // set only when errors is empty
  std::vector<ConfigError> errors;    // every error found, in file order
  std::vector<ConfigError> warnings;  // things that do not prevent running
};

// Reads and validates a configuration file. `${VAR}` and `${VAR:-default}` in
// scalar values are expanded from the environment.
LoadResult load_config_file(const std::string& path);
// Same, from bytes already in memory; `name` is used in messages.
LoadResult load_config_text(std::string_view text, const std::string& name);

// The loader's key tables as JSON (`weir --dump-config-keys`, for
// scripts/check-schema.py): the keys of every map and the words of every
// enumerated value.
std::string config_keys_json();

}  // namespace weir
