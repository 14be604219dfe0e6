// The condition language: parsing (with the position of every error), each
// matcher, value files, maps and the boolean operators. A small context plays
// the request: fetches answer from a table.

#include "common/cond/condition.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "tests/support/util.h"

namespace weir::cond {
namespace {

struct Req final : FetchContext {
  std::string path = "/api/v1/users", method = "GET", host = "shop.example.com", src = "10.1.2.3";
  std::vector<std::string> accept = {"text/html", "application/json"};
  int64_t req_len = 320;
  int status = 0;
  void fetch(const FetchSpec& f, std::vector<Sample>& out) override {
    auto str = [&](std::string_view v) {
      Sample s;
      s.str = v;
      out.push_back(s);
    };
    auto num = [&](int64_t n, Type t = Type::kInt) {
      Sample s;
      s.type = t;
      s.num = n;
      out.push_back(s);
    };
    const std::string_view name = f.name();
    if (name == "path") {
      str(path);
    } else if (name == "method") {
      str(method);
    } else if (name == "host") {
      str(host);
    } else if (name == "src") {
      Sample s;
      s.type = Type::kIp;
      s.ip = *parse_ip(src);
      out.push_back(s);
    } else if (name == "hdr") {
      if (f.arg == "accept") {
        if (f.occurrence == 0) {
          for (auto& a : accept) str(a);
        } else {
          size_t i = f.occurrence < 0 ? accept.size() - 1 : static_cast<size_t>(f.occurrence - 1);
          if (i < accept.size()) str(accept[i]);
        }
      }
    } else if (name == "req_len") {
      num(req_len);
    } else if (name == "status") {
      if (status) num(status);
    } else if (name == "ssl_fc") {
      num(0, Type::kBool);
    } else if (name == "always_true" || name == "always_false") {
      num(name == "always_true" ? 1 : 0, Type::kBool);
    }
  }
};

bool test_true(std::string_view text, Req& r) {
  FileCache files;
  ParseError err;
  auto t = parse_test(text, files, &err);
  EXPECT_TRUE(t) << text << ": " << err.message << " at " << err.offset;
  if (!t) return false;
  std::vector<Sample> scratch;
  return t->evaluate(r, scratch);
}

ParseError test_error(std::string_view text) {
  FileCache files;
  ParseError err;
  EXPECT_FALSE(parse_test(text, files, &err)) << text;
  return err;
}

TEST(Condition, StringMatchers) {
  Req r;
  EXPECT_TRUE(test_true("path_beg /api/", r));
  EXPECT_FALSE(test_true("path_beg /static/ /img/", r));
  EXPECT_TRUE(test_true("path -m beg /static/ /api/", r));
  EXPECT_TRUE(test_true("path_end /users", r));
  EXPECT_TRUE(test_true("path_sub v1/u", r));
  EXPECT_TRUE(test_true("path_dir v1", r));
  EXPECT_FALSE(test_true("path_dir v", r));
  EXPECT_TRUE(test_true("host_dom example.com", r));
  EXPECT_FALSE(test_true("host_dom ample.com", r));
  EXPECT_TRUE(test_true("path /api/v1/users", r));
  EXPECT_FALSE(test_true("path /API/v1/users", r));
  EXPECT_TRUE(test_true("path -i /API/v1/users", r));
  EXPECT_TRUE(test_true("path_beg -i /API", r));
  EXPECT_TRUE(test_true("method GET HEAD", r));
  EXPECT_TRUE(test_true("path_reg ^/api/v[0-9]+/", r));
  EXPECT_FALSE(test_true("path_reg ^/api/v[2-9]+/", r));
  EXPECT_TRUE(test_true("path -m reg -i ^/API/", r));
  EXPECT_TRUE(test_true(R"(path "/api/v1/users" '/x y')", r));
}

TEST(Condition, HeadersIntegersIpsAndPresence) {
  Req r;
  EXPECT_TRUE(test_true("hdr(Accept) application/json", r));     // any value
  EXPECT_FALSE(test_true("hdr(accept,1) application/json", r));  // the first only
  EXPECT_TRUE(test_true("hdr(accept,-1) application/json", r));  // the last
  EXPECT_TRUE(test_true("hdr_beg(accept) text/", r));
  EXPECT_TRUE(test_true("hdr(accept) -m found", r));
  EXPECT_FALSE(test_true("hdr(x-missing) -m found", r));
  EXPECT_TRUE(test_true("req_len gt 300", r));
  EXPECT_FALSE(test_true("req_len lt 300", r));
  EXPECT_TRUE(test_true("req_len 100:400", r));
  EXPECT_TRUE(test_true("req_len 320", r));
  EXPECT_TRUE(test_true("req_len ge 320", r));
  EXPECT_FALSE(test_true("req_len eq 321", r));
  EXPECT_TRUE(test_true("src 10.0.0.0/8 192.168.0.0/16", r));
  EXPECT_FALSE(test_true("src 192.168.0.0/16 10.1.2.4", r));
  EXPECT_TRUE(test_true("src 10.1.2.3", r));
  EXPECT_TRUE(test_true("src ::ffff:10.1.2.0/120", r));  // the IPv4-mapped form
  r.src = "2001:db8::7";
  EXPECT_TRUE(test_true("src 2001:db8::/32", r));
  EXPECT_FALSE(test_true("src 10.0.0.0/8", r));
  EXPECT_FALSE(test_true("ssl_fc", r));
  EXPECT_TRUE(test_true("always_true", r));
  EXPECT_FALSE(test_true("status 503", r));  // no response: no value
}

TEST(Condition, ValueFilesAndMaps) {
  std::string dir = weir::test::make_temp_dir();
  {
    std::ofstream f(dir + "/blocked.lst");
    f << "# networks we do not serve\n10.1.0.0/16\n\n  192.0.2.1  \n";
    std::ofstream m(dir + "/hosts.map");
    m << "# host backend\nshop.example.com   shop\napi.example.com api\n";
  }
  Req r;
  EXPECT_TRUE(test_true("src -f " + dir + "/blocked.lst", r));
  r.src = "192.0.2.1";
  EXPECT_TRUE(test_true("src -f " + dir + "/blocked.lst 203.0.113.9", r));
  r.src = "203.0.113.8";
  EXPECT_FALSE(test_true("src -f " + dir + "/blocked.lst 203.0.113.9", r));

  FileCache files;
  ParseError err;
  auto s = parse_sample("host,map(" + dir + "/hosts.map,default)", files, &err);
  ASSERT_TRUE(s) << err.message;
  EXPECT_EQ(s->evaluate(r).value_or("-"), "shop");
  r.host = "other.example.com";
  EXPECT_EQ(s->evaluate(r).value_or("-"), "default");
  auto no_default = parse_sample("host,map(" + dir + "/hosts.map)", files, &err);
  ASSERT_TRUE(no_default);
  EXPECT_FALSE(no_default->evaluate(r));
  auto upper = parse_sample("hdr(accept),upper", files, &err);
  ASSERT_TRUE(upper);
  EXPECT_EQ(upper->evaluate(r).value_or("-"), "APPLICATION/JSON");  // the last occurrence
  EXPECT_TRUE(test_true("host,map(" + dir + "/hosts.map,none) shop none", r));
  EXPECT_EQ(files.maps.size(), 1u);  // loaded once
  weir::test::remove_tree(dir);
}

TEST(Condition, BooleanExpressions) {
  FileCache files;
  ParseError err;
  NamedTests names;
  names["api"] = parse_test("path_beg /api/", files, &err);
  names["internal"] = parse_test("src 10.0.0.0/8", files, &err);
  names["get"] = parse_test("method GET", files, &err);
  Req r;
  auto eval = [&](std::string_view text) {
    auto c = parse_condition(text, names, files, &err);
    EXPECT_TRUE(c) << text << ": " << err.message << " at " << err.offset;
    return c && c->evaluate(r);
  };
  EXPECT_TRUE(eval("api"));
  EXPECT_TRUE(eval("api and internal"));
  EXPECT_FALSE(eval("api and not internal"));
  EXPECT_TRUE(eval("not api or internal"));
  EXPECT_TRUE(eval("!(api && !internal)"));
  EXPECT_TRUE(eval("api and (not get or internal)"));
  EXPECT_FALSE(eval("api and (not get or not internal)"));
  EXPECT_TRUE(eval("{ path_end /users } and { method -i get }"));
  EXPECT_TRUE(eval("{ hdr(x-none) -m found } or api"));
  EXPECT_FALSE(eval("{ src 192.168.0.0/16 } || { path \"}\" }"));
  auto resp = parse_condition("{ status 500:599 } and api", names, files, &err);
  ASSERT_TRUE(resp);
  EXPECT_TRUE(resp->uses_response());
  EXPECT_FALSE(parse_condition("api", names, files, &err)->uses_response());
}

TEST(Condition, ErrorsSayWhatAndWhere) {
  ParseError e = test_error("pth_beg /api/");
  EXPECT_NE(e.message.find("unknown fetch 'pth_beg'"), std::string::npos) << e.message;
  EXPECT_EQ(e.offset, 0u);
  e = test_error("path -m begins /x");
  EXPECT_NE(e.message.find("unknown matcher 'begins'"), std::string::npos);
  EXPECT_EQ(e.offset, 8u);
  e = test_error("path_reg ^/(a");
  EXPECT_NE(e.message.find("invalid regular expression"), std::string::npos) << e.message;
  EXPECT_EQ(e.offset, 9u);
  e = test_error("src 10.0.0.0/33");
  EXPECT_NE(e.message.find("prefix length"), std::string::npos);
  e = test_error("req_len gt many");
  EXPECT_NE(e.message.find("'many' is not an integer"), std::string::npos);
  EXPECT_EQ(e.offset, 11u);
  e = test_error("hdr /x");
  EXPECT_NE(e.message.find("hdr needs a name"), std::string::npos);
  e = test_error("path");
  EXPECT_NE(e.message.find("no value to compare"), std::string::npos);
  e = test_error("path -f /nonexistent/list");
  EXPECT_NE(e.message.find("cannot read value file /nonexistent/list"), std::string::npos);
  e = test_error("path \"/open");
  EXPECT_NE(e.message.find("unterminated"), std::string::npos);
  e = test_error("hdr(host,0) x");
  EXPECT_NE(e.message.find("occurrence"), std::string::npos);

  FileCache files;
  NamedTests names;
  names["api"] = parse_test("path_beg /api/", files, &e);
  auto cond_error = [&](std::string_view text) {
    ParseError err;
    EXPECT_FALSE(parse_condition(text, names, files, &err)) << text;
    return err;
  };
  e = cond_error("api and internal");
  EXPECT_NE(e.message.find("unknown condition 'internal' (defined here: api)"), std::string::npos)
      << e.message;
  EXPECT_EQ(e.offset, 8u);
  e = cond_error("api and");
  EXPECT_EQ(e.offset, 7u);
  e = cond_error("(api");
  EXPECT_NE(e.message.find("expected ')'"), std::string::npos);
  e = cond_error("api api");
  EXPECT_NE(e.message.find("expected 'and', 'or'"), std::string::npos);
  EXPECT_EQ(e.offset, 4u);
  // An acl whose definition failed (null) is known: naming it fails without a new
  // message to report, since its own error has been reported where it is defined.
  names["blocked"] = nullptr;
  e = cond_error("api or blocked");
  EXPECT_TRUE(e.reported_already) << e.message;
  e = cond_error("api and missing");
  EXPECT_FALSE(e.reported_already);
  EXPECT_NE(e.message.find("(defined here: api, blocked)"), std::string::npos) << e.message;
  e = cond_error("{ path_beg /x");
  EXPECT_NE(e.message.find("missing '}'"), std::string::npos);
  e = cond_error("api and { pth /x }");
  EXPECT_NE(e.message.find("unknown fetch 'pth'"), std::string::npos);
  EXPECT_EQ(e.offset, 10u);  // inside the braces, counted from the start of the condition
  ParseError se;
  EXPECT_FALSE(parse_sample("host,lowr", files, &se));
  EXPECT_NE(se.message.find("unknown converter 'lowr'"), std::string::npos);
  EXPECT_EQ(se.offset, 5u);
}

}  // namespace
}  // namespace weir::cond

namespace weir::cond {
namespace {

// Networks as `src` patterns and `trusted` lists write them. A prefix that is
// not 0..32 (IPv4) or 0..128 (IPv6) digits is refused, however long (the
// condition fuzzer found a prefix whose digits overflowed an int).
TEST(IpNetwork, ParsesNetworksAndRefusesBadPrefixes) {
  std::string error;
  auto v4 = parse_ip_network("10.1.0.0/16", &error);
  ASSERT_TRUE(v4) << error;
  EXPECT_EQ(v4->bits, 96 + 16);
  EXPECT_TRUE(v4->contains(*parse_ip("10.1.200.3")));
  EXPECT_FALSE(v4->contains(*parse_ip("10.2.0.1")));
  auto v6 = parse_ip_network("2001:db8::/32", &error);
  ASSERT_TRUE(v6) << error;
  EXPECT_TRUE(v6->contains(*parse_ip("2001:db8:1::7")));
  EXPECT_FALSE(v6->contains(*parse_ip("2001:db9::7")));
  auto one = parse_ip_network("192.0.2.7", &error);
  ASSERT_TRUE(one) << error;
  EXPECT_TRUE(one->contains(*parse_ip("192.0.2.7")));
  EXPECT_FALSE(one->contains(*parse_ip("192.0.2.8")));
  for (const char* bad :
       {"10.0.0.0/33", "2001:db8::/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/99999999999999",
        "10.0.0.0/8\x1c"
        "192.beg168.0.0/16",
        "10.0.0.300/8", "host/8"}) {
    EXPECT_FALSE(parse_ip_network(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

}  // namespace
}  // namespace weir::cond
