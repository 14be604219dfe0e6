#pragma once
// The parameters of a request target's query string, as `balance: url_param`
// and the url_param() fetch of rules and log formats read them.

#include <string_view>

namespace weir::http {

// The value of the first parameter called `name` in the query of `target`
// ("/p?a=1&b=2", or an absolute-form target): everything after its first '='
// ("" when it has none), with *found true; "" with *found false when the
// target has no such parameter. The query ends at a '#': a fragment is not
// part of it. Names compare exactly; empty pairs ("a=1&&b=2") are skipped.
std::string_view query_param(std::string_view target, std::string_view name, bool* found);

}  // namespace weir::http
