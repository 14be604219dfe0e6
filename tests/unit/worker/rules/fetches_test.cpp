// The fetches of the condition language as the worker registers them
// (worker/rules/fetches_*.cpp): every fetch the documentation names is
// registered and every registered one is documented, and each, written as a
// sample, gives its own value over a request, a response and a connection.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>

#include "common/base/address.h"
#include "common/base/registry.h"
#include "worker/proxy_protocol/header.h"
#include "worker/rules/rules.h"

namespace weir {
namespace {

// The fetches of the table that starts with `header` in a doc/ file: the names
// of the `code` spans of its first column, without their "(ARGS)".
std::set<std::string> documented_fetches(const std::string& file, const std::string& header) {
  std::ifstream in(std::string(WEIR_SOURCE_DIR) + "/doc/" + file);
  EXPECT_TRUE(in) << file;
  std::set<std::string> out;
  std::string line;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line == header) in_table = true;
    if (line.rfind("|", 0) != 0) in_table = false;
    if (!in_table || line.rfind("| `", 0) != 0) continue;
    const std::string cell = line.substr(1, line.find(" | ", 1) - 1);
    for (size_t open = cell.find('`'); open != std::string::npos;
         open = cell.find('`', cell.find('`', open + 1) + 1)) {
      std::string code = cell.substr(open + 1, cell.find('`', open + 1) - open - 1);
      out.insert(code.substr(0, code.find('(')));
    }
  }
  EXPECT_FALSE(out.empty()) << "no table '" << header << "' in doc/" << file;
  return out;
}

std::set<std::string> registered_fetches() {
  std::set<std::string> out;
  // A generated family (sc0_*, src_*) is documented once, by its family name
  // without its arguments.
  for (const cond::FetchDef* d : Registry<cond::FetchDef>::instance().entries()) {
    const std::string_view name = d->family.empty() ? d->name : d->family;
    out.emplace(name.substr(0, name.find('(')));
  }
  return out;
}

// A fetch family whose file is missing from the build (or a fetch added
// without documentation) fails here.
TEST(Fetches, EveryDocumentedFetchIsRegisteredAndEveryRegisteredOneIsDocumented) {
  std::set<std::string> documented =
      documented_fetches("configuration.md", "| fetch | type | value |");
  for (const std::string& f : documented_fetches("tls.md", "| fetch | value |"))
    documented.insert(f);
  EXPECT_EQ(registered_fetches(), documented);
}

// Every registered fetch, as a sample over a connection that carried a
// ClientHello (no TLS handshake: the ssl_* fetches of a handshake have no
// value), a request and its response. A fetch wired to another's function, or
// one that lost its arguments, gives a value other than its own.
TEST(Fetches, EachGivesItsOwnValue) {
  const std::string req_text =
      "POST /p?k=v1 HTTP/1.0\r\nHost: Shop.Example.com:8080\r\nX-K: h1, h2\r\n"
      "Cookie: a=1; k=c1\r\n\r\n";
  const std::string res_text =
      "HTTP/1.1 503 Busy\r\nX-K: r1\r\nSet-Cookie: b=2\r\nSet-Cookie: k=s1; Path=/\r\n"
      "Content-Length: 0\r\n\r\n";
  http::MessageHead req, res;
  size_t scan = 0;
  ASSERT_EQ(http::parse_request(req_text.data(), req_text.size(), req_text.size() + 1, &scan, &req),
            http::ParseStatus::kComplete);
  scan = 0;
  ASSERT_EQ(http::parse_response(res_text.data(), res_text.size(), res_text.size() + 1, &scan,
                                 "POST", &res),
            http::ParseStatus::kComplete);
  bool port = false;
  std::string error;
  const SockAddr client = parse_numeric_address("192.0.2.7:40000", &port, &error).value();
  const SockAddr local = parse_numeric_address("127.0.0.1:8080", &port, &error).value();
  const Vars vars = {{"txn.k", "var1"}};
  SampleSource s;
  s.src = &client;
  s.dst = &local;
  s.req = &req;
  s.req_len = req.head_len;
  s.res = &res;
  s.status = res.status;
  s.vars = &vars;
  proxy_protocol::Header pp;  // as a balancer in front sent it
  pp.version = 2;
  pp.alpn = "h2";
  pp.authority = "pp.example.com";
  pp.unique_id = "id-1";
  pp.ssl.present = true;
  pp.ssl.client = 0x01;
  pp.ssl.verify = 3;
  pp.ssl.version = "TLSv1.2";
  pp.ssl.cn = "client-cn";
  pp.ssl.cipher = "ECDHE-RSA-AES128-GCM-SHA256";
  pp.ssl.sig_alg = "RSA-SHA256";
  pp.ssl.key_alg = "RSA2048";
  s.pp = &pp;
  s.hello = true;
  s.hello_sni = "mail.example.com";
  s.hello_version = "TLSv1.3";

  const std::string none = "<none>";
  const std::map<std::string, std::string> expected = {
      {"src", "192.0.2.7"},
      {"src_port", "40000"},
      {"dst", "127.0.0.1"},
      {"dst_port", "8080"},
      {"method", "POST"},
      {"path", "/p"},
      {"url", "/p?k=v1"},
      {"query", "k=v1"},
      {"url_param", "v1"},
      {"hdr", "h2"},  // as a value: the last one
      {"req.hdr", "h2"},
      {"hdr_cnt", "2"},
      {"host", "shop.example.com"},
      {"cookie", "c1"},
      {"req.cook", "c1"},
      {"res.cook", "s1"},
      {"req_len", std::to_string(req_text.size())},
      {"http_version", "1.0"},
      {"status", "503"},
      {"res_hdr", "r1"},
      {"res.hdr", "r1"},
      {"ssl_fc", "0"},
      {"ssl_sni", none},
      {"ssl_version", none},
      {"ssl_cipher", none},
      {"ssl_alpn", none},
      {"ssl_c_used", none},
      {"ssl_c_verify", none},
      {"ssl_c_s_dn", none},
      {"ssl_c_i_dn", none},
      {"ssl_c_serial", none},
      {"req_ssl_sni", "mail.example.com"},
      {"req_ssl_ver", "TLSv1.3"},
      {"req_ssl_hello", "1"},
      {"fc_pp", "1"},
      {"fc_pp_alpn", "h2"},
      {"fc_pp_authority", "pp.example.com"},
      {"fc_pp_unique_id", "id-1"},
      {"fc_pp_ssl", "1"},
      {"fc_pp_ssl_verify", "3"},
      {"fc_pp_ssl_version", "TLSv1.2"},
      {"fc_pp_ssl_cn", "client-cn"},
      {"fc_pp_ssl_cipher", "ECDHE-RSA-AES128-GCM-SHA256"},
      {"fc_pp_ssl_sig_alg", "RSA-SHA256"},
      {"fc_pp_ssl_key_alg", "RSA2048"},
      {"var", "var1"},
      {"always_true", "1"},
      {"always_false", "0"},
  };
  std::set<std::string> seen;
  for (const cond::FetchDef* d : Registry<cond::FetchDef>::instance().sorted()) {
    // The stick-table fetches read their own arguments and need tables and
    // tracked entries: tests/unit/worker/stick/fetches_test.cpp has them.
    if (d->parse_args) continue;
    const std::string name(d->name);
    std::string text = name;
    if (d->arg == cond::FetchArg::kVariable) {
      text += "(txn.k)";
    } else if (d->arg != cond::FetchArg::kNone) {
      text += "(k)";
    }
    if (d->arg == cond::FetchArg::kHeader) text = name + "(X-K)";  // lower-cased by the parser
    cond::FileCache files;
    cond::ParseError err;
    std::optional<cond::SampleExpr> e = cond::parse_sample(text, files, &err);
    ASSERT_TRUE(e) << text << ": " << err.message;
    auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << "no expected value for the fetch " << name;
    EXPECT_EQ(e->evaluate(s).value_or(none), it->second) << text;
    seen.insert(name);
  }
  EXPECT_EQ(seen.size(), expected.size());
}

}  // namespace
}  // namespace weir
