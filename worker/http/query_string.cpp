#include "worker/http/query_string.h"

namespace weir::http {

std::string_view query_param(std::string_view target, std::string_view name, bool* found) {
  *found = false;
  size_t q = target.find_first_of("?#");
  if (q == std::string_view::npos || target[q] == '#') return {};
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      *found = true;
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return {};
}

}  // namespace weir::http
