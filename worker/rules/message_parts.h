#pragma once
// Reading a message head the way rules and fetches do: its headers (parsed or
// edited by rules), a request target's path and query.

#include <string_view>

#include "worker/http/h1/http_codec.h"
#include "worker/rules/rules.h"

namespace weir {

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(name, value) for every header of the edited copy when there is one,
// else of the parsed head (when there is one).
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

// The query of a request target, without '?' ("" when there is none).
inline std::string_view query_of(std::string_view target) {
  size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

}  // namespace weir
