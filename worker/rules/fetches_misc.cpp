// Fetches that read neither the connection nor a message: var (the variables
// that set_var fills) and the constants always_true and always_false. Each runs on
// the SampleSource that called it (SampleSource::of).

#include "common/base/registry.h"
#include "worker/rules/rules.h"

namespace weir {
namespace {

using namespace cond;  // the types of fetches

void var(const FetchSpec& f, FetchContext& c, std::vector<Sample>& out) {
  const Vars* vars = SampleSource::of(c).vars;
  if (!vars) return;
  for (const auto& [name, value] : *vars) {
    if (name == f.arg) {
      push_string(out, value);
      return;
    }
  }
}

template <bool Value>
void constant(const FetchSpec&, FetchContext&, std::vector<Sample>& out) {
  push_number(out, Value ? 1 : 0, Type::kBool);
}

constexpr FetchScope kConn = FetchScope::kConnection;
constexpr FetchDef kMiscFetches[] = {
    {"var", Type::kString, kConn, FetchArg::kVariable, false, var},
    {"always_true", Type::kBool, kConn, FetchArg::kNone, false, constant<true>},
    {"always_false", Type::kBool, kConn, FetchArg::kNone, false, constant<false>},
};
const Registrar<FetchDef> kRegister(kMiscFetches);

}  // namespace
}  // namespace weir
