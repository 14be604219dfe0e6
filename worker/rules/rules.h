#pragma once
// Running http_request / http_response / tcp_request rules on the traffic path:
// the fetches of the condition language over a request, a response or a
// connection, an editable copy of a message head for the rules that change it,
// and the evaluation loop (first terminal rule wins).

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/address.h"
#include "common/cond/condition.h"
#include "common/config/config.h"
#include "worker/http/h1/http_codec.h"

struct ssl_st;

namespace weir::stick {
class Trackers;
}

namespace weir {
namespace proxy_protocol {
struct Header;
}

// A message head that rules may change. Built from a parsed head the first time
// a rule changes something; serialized again for the server or the client.
struct EditableHead {
  std::string method, target;  // requests
  int status = 0;              // responses
  std::string reason;
  int version_minor = 1;
  std::vector<std::pair<std::string, std::string>> headers;

  static EditableHead from(const http::MessageHead& h);
  // Request head text, through the blank line.
  std::string request_text() const;
};

using Vars = std::vector<std::pair<std::string, std::string>>;

// Where the fetches of the condition language read their samples: the
// connection (addresses, TLS, a tcp-mode ClientHello), and when there is one the
// request and response (parsed heads or their edited copies) and the
// variables. http and tcp sessions fill it for their rules, sample templates
// (log formats, server SNI) and health checks (with nothing but constants).
class SampleSource final : public cond::FetchContext {
 public:
  const SockAddr* src = nullptr;
  // The local address (dst fetches): read it through local(). A source that can
  // find it only with a system call leaves it null and sets local_of, which
  // local() calls the first time a fetch needs it.
  mutable const SockAddr* dst = nullptr;
  const SockAddr* (*local_of)(void* owner) = nullptr;
  void* local_owner = nullptr;
  const SockAddr* local() const {
    if (!dst && local_of) dst = local_of(local_owner);
    return dst;
  }
  // The PROXY protocol header the connection started with (null: none; fc_pp*).
  const proxy_protocol::Header* pp = nullptr;
  const http::MessageHead* req = nullptr;
  const EditableHead* req_edit = nullptr;  // wins over req when set
  const http::MessageHead* res = nullptr;
  const EditableHead* res_edit = nullptr;
  const Vars* vars = nullptr;
  size_t req_len = 0;
  int status = 0;
  const ssl_st* ssl = nullptr;  // the client connection's TLS, once its handshake is done
  bool tls_client = false;      // the client connection is TLS (ssl_fc)
  // The stick-table entries the connection tracks (sc* fetches; made by its
  // first track action). Null where there is no client connection (checks).
  std::unique_ptr<stick::Trackers>* sc = nullptr;
  // tcp content inspection of a ClientHello (req_ssl_*).
  bool hello = false;
  std::string_view hello_sni;
  std::string_view hello_version;
  // Runs the fetch's registered function (worker/rules/fetches_*.cpp) on this source.
  void fetch(const cond::FetchSpec& f, std::vector<cond::Sample>& out) override;
  // The source a fetch function runs on: SampleSource::fetch is the only caller
  // of the worker's fetch functions, so their context is always a SampleSource.
  static const SampleSource& of(cond::FetchContext& c) { return static_cast<SampleSource&>(c); }
};

// What a list of request or response rules decided.
struct RuleVerdict {
  enum class Kind { kContinue, kDeny, kTarpit, kReturn, kRedirect } kind = Kind::kContinue;
  const HttpRule* rule = nullptr;  // the terminal rule, when not kContinue
  std::string location;            // redirect
  std::string backend;             // use_backend: the chosen name ("" : none)
  bool use_backend = false;
};

// One list of http rules being run: what an action's run function
// (HttpActionDef::run, worker/rules/actions_*.cpp) reads and changes.
struct RuleRun {
  SampleSource& ctx;
  const http::MessageHead& head;       // as parsed
  std::optional<EditableHead>* edit;   // the edited copy, once a rule changed something
  Vars* vars;                          // set_var
  std::vector<std::string>* captures;  // capture
  bool response;                       // http_response rules
  RuleVerdict verdict;                 // what a terminal action decided

  // The head as the rules left it so far: the edited copy, or null.
  const EditableHead* edited() const { return *edit ? &**edit : nullptr; }
  // The copy to change, made from `head` on the first change (the fetch
  // context reads it from then on).
  EditableHead& editable();
};

// One list of tcp_request rules being run (TcpActionDef::run).
struct TcpRuleRun {
  SampleSource& ctx;
  std::string* backend;  // use_backend: the chosen name
  TcpRule::Stage stage;  // the rules being run
};

// Runs `rules` in order. Rules that change the head edit *edit (created from the
// parsed head on the first change; the fetch context then reads it). set_var and
// capture fill *vars and *captures.
RuleVerdict run_http_rules(const std::vector<HttpRule>& rules, SampleSource& ctx,
                           const http::MessageHead& head, std::optional<EditableHead>* edit,
                           Vars* vars, std::vector<std::string>* captures, bool response);

// tcp_request rules of one stage: true when the connection may go on;
// *backend names a use_backend choice.
bool run_tcp_rules(const std::vector<TcpRule>& rules, TcpRule::Stage stage, SampleSource& ctx,
                   std::string* backend);

}  // namespace weir
