// The registered rule actions (worker/rules/actions_*.cpp) against the user's
// documentation: every action a user can write is in doc/configuration.md, and
// every action documented there exists. (doc/weir.schema.json is compared with
// the same registries by scripts/check-schema.py, through --dump-config-keys.)

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>

#include "common/base/registry.h"
#include "common/config/actions.h"

namespace weir {
namespace {

// The lines of doc/configuration.md's section `heading` (up to the next heading).
std::vector<std::string> section(const std::string& heading) {
  std::ifstream in(std::string(WEIR_SOURCE_DIR) + "/doc/configuration.md");
  EXPECT_TRUE(in) << "doc/configuration.md";
  std::vector<std::string> lines;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("#", 0) == 0) inside = line == heading;
    if (inside) lines.push_back(line);
  }
  EXPECT_FALSE(lines.empty()) << heading;
  return lines;
}

TEST(RuleActions, EveryRegisteredHttpActionIsDocumented) {
  // The first column of the table of actions: | `name` | value | what it does |
  std::set<std::string> documented;
  for (const std::string& line : section("### http_request and http_response")) {
    if (line.rfind("| `", 0) != 0) continue;
    documented.insert(line.substr(3, line.find('`', 3) - 3));
  }
  std::set<std::string> registered;
  for (const HttpActionDef* a : Registry<HttpActionDef>::instance().entries()) {
    registered.insert(std::string(a->name));
    EXPECT_NE(a->parse, nullptr) << a->name;
    EXPECT_NE(a->run, nullptr) << a->name;
    EXPECT_NE(a->where & kInBoth, 0U) << a->name << " is allowed nowhere";
  }
  EXPECT_GE(registered.size(), 18U);
  EXPECT_EQ(documented, registered);
}

TEST(RuleActions, EveryRegisteredTcpActionIsDocumented) {
  std::string text;
  for (const std::string& line : section("### tcp_request")) text += line + "\n";
  size_t count = 0;
  for (const TcpActionDef* a : Registry<TcpActionDef>::instance().entries()) {
    ++count;
    // `connection: accept | reject`, `{use_backend: NAME}`
    const std::string written =
        a->takes_value ? "{" + std::string(a->name) + ": " : " " + std::string(a->name);
    EXPECT_NE(text.find(written), std::string::npos) << a->name << " in ### tcp_request";
    EXPECT_NE(a->run, nullptr) << a->name;
    EXPECT_EQ(a->parse != nullptr, a->takes_value) << a->name;
  }
  EXPECT_EQ(count, 7U);
}

}  // namespace
}  // namespace weir
