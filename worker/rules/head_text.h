#pragma once
// The parts of a message head as rules and fetches read them: a request
// target's path and query, header values trimmed, every header of a parsed head
// or of its edited copy.

#include <string_view>

#include "worker/http/http_codec.h"
#include "worker/rules/rules.h"

namespace weir::rules_detail {

// Without the spaces and tabs around it (a header value, a list item).
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(name, value) for every header of the head or its edited copy.
template <typename Fn>
void each_header(const http::MessageHead* h, const EditableHead* e, Fn fn) {
  if (e) {
    for (const auto& [n, v] : e->headers) fn(std::string_view(n), std::string_view(v));
  } else if (h) {
    for (size_t i = 0; i < h->header_count; ++i) fn(h->headers[i].name, h->headers[i].value);
  }
}

// The path of a request target (origin-form or absolute-form), without the query.
inline std::string_view path_of(std::string_view target) {
  if (!target.empty() && target[0] != '/') {
    size_t scheme = target.find("://");
    if (scheme != std::string_view::npos) {
      size_t slash = target.find('/', scheme + 3);
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  return target.substr(0, target.find('?'));
}

// The query string of a request target, without '?' (empty: none).
inline std::string_view query_of(std::string_view target) {
  size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

}  // namespace weir::rules_detail
