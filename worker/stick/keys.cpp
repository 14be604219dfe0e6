#include "worker/stick/keys.h"

#include <vector>

#include "common/cond/ip_value.h"
#include "common/cond/stick_words.h"
#include "worker/rules/rules.h"

namespace weir::stick {

bool sample_key(const cond::SampleExpr& key, const TableDef& t, SampleSource& ctx,
                std::string* out) {
  static const cond::FetchDef* const src = cond::find_fetch("src");
  if (key.fetch.def == src && key.converters.empty()) {
    // The common key, without the text form the src fetch makes.
    cond::IpValue ip;
    if (!ctx.src || !cond::ip_value_of(*ctx.src, &ip)) return false;
    return key_from_ip(t, ip.bytes, ip.v4, out);
  }
  std::vector<cond::Sample> vals;
  if (!key.converters.empty()) {
    // Converters work on the text form.
    auto text = key.evaluate(ctx);
    if (text) cond::push_owned(vals, std::move(*text));
  } else {
    ctx.fetch(key.fetch, vals);
  }
  if (vals.empty()) return false;
  return cond::stick_words::key_of(vals.front(), t, out);
}

}  // namespace weir::stick
