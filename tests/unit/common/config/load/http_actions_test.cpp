// The actions of http rules (load/http_actions.cpp): where each may be used, the
// defaults of the answering actions, and what an unknown or misplaced action says.

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

// A valid value of each action.
constexpr std::pair<std::string_view, std::string_view> kExamples[] = {
    {"allow", "true"},
    {"deny", "true"},
    {"tarpit", "{delay: 1s}"},
    {"return", "{status: 204}"},
    {"redirect", "{scheme: https}"},
    {"set_header", "{name: X-A, value: b}"},
    {"add_header", "{name: X-A, value: b}"},
    {"del_header", "X-A"},
    {"replace_header", "{name: X-A, match: a, replace: b}"},
    {"replace_value", "{name: X-A, match: a, replace: b}"},
    {"set_path", "/x"},
    {"set_query", "a=b"},
    {"set_method", "GET"},
    {"set_uri", "\"/x?y\""},
    {"set_var", "{name: txn.a, value: b}"},
    {"capture", "\"%[path]\""},
    {"use_backend", "app"},
    {"set_status", "{status: 299, reason: Fine}"},
};

// One rule in a frontend's or the backend's http_request, or in http_response.
enum class Place { kFrontendRequest, kBackendRequest, kResponse };

LoadResult with_rule(Place place, std::string_view action, std::string_view value) {
  const std::string rule = "[{" + std::string(action) + ": " + std::string(value) + "}]";
  std::string frontend = "{bind: \"127.0.0.1:8080\", default_backend: app";
  std::string backend = "{servers: {s1: \"127.0.0.1:9001\"}";
  if (place == Place::kFrontendRequest) frontend += ", http_request: " + rule;
  if (place == Place::kResponse) frontend += ", http_response: " + rule;
  if (place == Place::kBackendRequest) backend += ", http_request: " + rule;
  return load("frontends:\n  web: " + frontend + "}\nbackends:\n  app: " + backend + "}\n");
}

bool allowed(Place place, std::string_view action) {
  if (place == Place::kResponse) {
    for (std::string_view a : {"allow", "deny", "return", "set_header", "add_header", "del_header",
                               "replace_header", "replace_value", "set_var", "set_status"}) {
      if (a == action) return true;
    }
    return false;
  }
  return action != "set_status" && (action != "use_backend" || place == Place::kFrontendRequest);
}

TEST(ConfigHttpActions, EachActionLoadsWhereItMayBeUsedAndIsRefusedElsewhere) {
  for (const auto& [action, value] : kExamples) {
    for (const Place place : {Place::kFrontendRequest, Place::kBackendRequest, Place::kResponse}) {
      const LoadResult r = with_rule(place, action, value);
      const std::string where = place == Place::kResponse          ? "http_response"
                                : place == Place::kFrontendRequest ? "frontend http_request"
                                                                   : "backend http_request";
      if (allowed(place, action)) {
        EXPECT_TRUE(loads(r)) << action << " in " << where;
        continue;
      }
      const std::string expected = place == Place::kBackendRequest && action == "use_backend"
                                       ? "use_backend belongs to a frontend's http_request"
                                   : place == Place::kResponse
                                       ? std::string(action) + " is not a response action here"
                                       : std::string(action) + " is not a request action here";
      ASSERT_EQ(r.errors.size(), 1U) << action << " in " << where << describe(r.errors);
      EXPECT_NE(r.errors[0].message.find(expected), std::string::npos)
          << action << " in " << where << describe(r.errors);
    }
  }
}

TEST(ConfigHttpActions, AnsweringActionsHaveTheirDefaults) {
  const auto rule = [](Place place, std::string_view action, std::string_view value) {
    const LoadResult r = with_rule(place, action, value);
    EXPECT_TRUE(loads(r)) << action;
    const auto& f = r.config->frontends.at(0).rules;
    return place == Place::kResponse ? f.http_response.at(0) : f.http_request.at(0);
  };
  EXPECT_EQ(rule(Place::kFrontendRequest, "deny", "true").status, 403);
  EXPECT_EQ(rule(Place::kResponse, "deny", "true").status, 502);
  const HttpRule tarpit = rule(Place::kFrontendRequest, "tarpit", "~");
  EXPECT_EQ(tarpit.status, 500);
  EXPECT_EQ(tarpit.delay, 5000);
  EXPECT_EQ(rule(Place::kFrontendRequest, "return", "~").status, 200);
  const HttpRule redirect = rule(Place::kFrontendRequest, "redirect", "{prefix: /new}");
  EXPECT_EQ(redirect.status, 302);
  EXPECT_EQ(redirect.redirect, HttpRule::Redirect::kPrefix);
  EXPECT_FALSE(redirect.drop_query);
  EXPECT_EQ(rule(Place::kFrontendRequest, "capture", "x").capture_len, 64U);
  // A constant use_backend names its backend; a template leaves it to each request.
  EXPECT_EQ(rule(Place::kFrontendRequest, "use_backend", "app").backend, "app");
  EXPECT_EQ(rule(Place::kFrontendRequest, "use_backend", "\"%[hdr(host)]\"").backend, "");
}

TEST(ConfigHttpActions, AnUnknownActionSuggestsOnlyActionsAllowedThere) {
  // set_status is a response action: a request rule does not suggest it.
  const LoadResult response = with_rule(Place::kResponse, "set_statuss", "200");
  EXPECT_TRUE(only_error(response, 2, 72,
                         "http_response rule 1: unknown action 'set_statuss'; did you mean "
                         "'set_status'?"));
  const LoadResult request = with_rule(Place::kFrontendRequest, "set_statuss", "200");
  ASSERT_EQ(request.errors.size(), 1U) << describe(request.errors);
  EXPECT_EQ(request.errors[0].message.find("set_status'"), std::string::npos)
      << describe(request.errors);
  // Nor does a backend's suggest use_backend.
  const LoadResult backend = with_rule(Place::kBackendRequest, "use_backendd", "app");
  EXPECT_TRUE(only_error(backend, 4, 58, "http_request rule 1: unknown action 'use_backendd'"));
  EXPECT_EQ(backend.errors[0].message.find("did you mean"), std::string::npos);
}

TEST(ConfigHttpActions, ARuleHasOneActionAndStopsAtItsFirstMistake) {
  const LoadResult two = with_rule(Place::kFrontendRequest, "deny", "true, allow: true");
  EXPECT_TRUE(only_error(two, 2, 83, "one action per rule (deny and allow); write two rules"));
  // The status is refused; the body and file that follow are not looked at.
  const LoadResult first =
      with_rule(Place::kFrontendRequest, "deny", "{status: 200, body: a, file: b}");
  EXPECT_TRUE(only_error(first, 2, 86, "deny: status: must be between 400 and 599 (got 200)"));
  const LoadResult none = with_rule(Place::kFrontendRequest, "if", "\"{ path_beg /x }\"");
  EXPECT_TRUE(only_error(none, 2, 70, "http_request rule 1: no action"));
}

}  // namespace
}  // namespace weir
