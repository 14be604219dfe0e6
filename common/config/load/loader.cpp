// Turns weir.yaml into a Config: every key checked, every default resolved, every
// problem reported with its position. This file reads the top level, checks the
// backends that frontends name, and holds the values several sections read.

#include "common/config/load/loader.h"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace weir {
namespace config_detail {
namespace {

constexpr size_t kMaxFileSize = 16 * 1024 * 1024;

// ---- the top level ---------------------------------------------------------------------

// Read in table order, whatever the file's: defaults before the sections that
// inherit from it.
constexpr Key<Scope> kTopKeys[] = {
    {"global", read_with<&Loader::load_global>},
    {"defaults", read_with<&Loader::load_defaults>},
    {"peers", read_with<&Loader::load_peers>},
    {"stick_tables", read_with<&Loader::load_stick_tables>},
    {"frontends"},  // read last, by Loader::load(): a file needs frontends
    {"backends", read_with<&Loader::load_backends>},
};
constexpr auto kTopNames = names_of(kTopKeys);

// getpwnam_r/getgrnam_r with a buffer that grows on ERANGE.
template <typename Entry, typename Lookup>
bool account_exists(const std::string& name, Lookup lookup) {
  std::vector<char> buffer(4096);
  for (;;) {
    Entry entry{};
    Entry* result = nullptr;
    const int rc = lookup(name.c_str(), &entry, buffer.data(), buffer.size(), &result);
    if (rc == ERANGE && buffer.size() < (1U << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    return rc == 0 && result != nullptr;
  }
}

// ---- values several sections read ------------------------------------------------------

constexpr Choice<Mode> kModes[] = {{"http", Mode::kHttp}, {"tcp", Mode::kTcp}};
constexpr auto kModeNames = names_of(kModes);

constexpr KeyList kLists[] = {
    {"top", kKeysOf, kTopNames},
    {"mode", kValuesOf, kModeNames},
};
const Registrar<KeyList> kRegisterTop(kLists);

}  // namespace

std::vector<const YamlNode*> entries_of(const YamlNode& node) {
  std::vector<const YamlNode*> entries;
  if (node.kind == Kind::kSequence) {
    for (const auto& item : node.items) entries.push_back(item.get());
  } else if (node.kind != Kind::kNull) {
    entries.push_back(&node);
  }
  return entries;
}

bool valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool user_exists(const std::string& name) {
  return account_exists<struct passwd>(name, getpwnam_r);
}

bool group_exists(const std::string& name) {
  return account_exists<struct group>(name, getgrnam_r);
}

std::optional<Mode> Loader::mode_value(const YamlNode& node, const std::string& what) {
  const auto text = text_value(node, what, one_of(kModeNames));
  if (!text) return std::nullopt;
  if (const auto mode = find_choice(kModes, *text)) return mode;
  error(node.mark,
        what + ": unknown mode " + quoted(*text) + " (expected " + one_of(kModeNames) + ")");
  return std::nullopt;
}

void Loader::parse_error(const YamlNode& node, const std::string& what, const std::string& text,
                         const cond::ParseError& pe) {
  error(mark_inside(node, pe.offset), what + ": " + pe.message + " (at position " +
                                          std::to_string(pe.offset + 1) + " of " + quoted(text) +
                                          ")");
}

std::optional<cond::ValueTemplate> Loader::template_value(const YamlNode& node,
                                                          const std::string& what) {
  auto t = text_value(node, what, "a string (samples as %[fetch])");
  if (!t) return std::nullopt;
  cond::ParseError pe;
  auto tpl = cond::parse_template(*t, files, &pe);
  if (!tpl) {
    parse_error(node, what, *t, pe);
  }
  return tpl;
}

std::optional<cond::SampleExpr> Loader::sample_value(const YamlNode& node,
                                                     const std::string& what) {
  auto t = text_value(node, what, "a sample such as src or req.hdr(x-api-key)");
  if (!t) return std::nullopt;
  cond::ParseError pe;
  auto smp = cond::parse_sample(*t, files, &pe);
  if (!smp) {
    parse_error(node, what, *t, pe);
  }
  return smp;
}

std::shared_ptr<const cond::Condition> Loader::condition_value(const YamlNode& node,
                                                               const std::string& what,
                                                               const cond::NamedTests& acls,
                                                               bool response) {
  auto t = text_value(node, what, "a condition such as \"api and not internal\"");
  if (!t) return nullptr;
  cond::ParseError pe;
  auto c = cond::parse_condition(*t, acls, files, &pe);
  if (!c) {
    if (pe.reported_already) return nullptr;
    parse_error(node, what, *t, pe);
    return nullptr;
  }
  if (c->uses_response() && !response) {
    error(node.mark, what + ": status and res_hdr exist only in http_response rules");
    return nullptr;
  }
  return c;
}

SourceMark Loader::mark_inside(const YamlNode& node, size_t offset) const {
  SourceMark m = node.mark;
  size_t pos = 0;
  for (int line = 1; line < m.line && pos != std::string_view::npos; ++line) {
    pos = text_.find('\n', pos);
    if (pos != std::string_view::npos) ++pos;
  }
  if (pos != std::string_view::npos && m.column > 0) {
    size_t at = pos + static_cast<size_t>(m.column - 1);
    if (at < text_.size() && (text_[at] == '"' || text_[at] == '\'')) ++m.column;
  }
  m.column += static_cast<int>(offset);
  return m;
}

void Loader::check_references() {
  std::vector<bool> used(config.backends.size(), false);
  std::vector<std::string_view> names;
  for (const BackendConfig& backend : config.backends) names.push_back(backend.name);
  for (const BackendReference& ref : default_backends) {
    const FrontendConfig& frontend = config.frontends[ref.frontend];
    const int index = config.backend_index(frontend.default_backend);
    if (index < 0) {
      error(ref.mark, "frontend " + quoted(frontend.name) + ": default_backend " +
                          quoted(frontend.default_backend) + " does not exist" +
                          suggestion(frontend.default_backend, names));
      continue;
    }
    const auto i = static_cast<size_t>(index);
    used[i] = true;
    const BackendConfig& backend = config.backends[i];
    if (ref.mode_known && backend_mode_known[i] && frontend.mode != backend.mode) {
      const auto mode_name = [](Mode mode) { return mode == Mode::kHttp ? "http" : "tcp"; };
      error(ref.mark, "frontend " + quoted(frontend.name) + " is in " + mode_name(frontend.mode) +
                          " mode but its default_backend " + quoted(backend.name) + " is in " +
                          mode_name(backend.mode) + " mode");
    }
  }
  for (const RuleBackendReference& ref : rule_backends) {
    const FrontendConfig& frontend = config.frontends[ref.frontend];
    const int index = config.backend_index(ref.name);
    if (index < 0) {
      error(ref.mark, "frontend " + quoted(frontend.name) + ": use_backend " + quoted(ref.name) +
                          " does not exist" + suggestion(ref.name, names));
      continue;
    }
    const auto i = static_cast<size_t>(index);
    used[i] = true;
    if (backend_mode_known[i] && frontend.mode != config.backends[i].mode) {
      error(ref.mark, "frontend " + quoted(frontend.name) + ": use_backend " + quoted(ref.name) +
                          " is in another mode than the frontend");
    }
  }
  for (size_t i = 0; i < config.backends.size(); ++i) {
    if (!used[i] && !dynamic_backends) {
      warn(config.backends[i].mark,
           "backend " + quoted(config.backends[i].name) + " is not used by any frontend");
    }
  }
}

LoadResult Loader::load(std::string_view text) {
  text_ = text;
  const YamlDocument doc = parse_yaml(text, file());
  if (!doc.errors.empty()) {
    result_.errors = doc.errors;
    return std::move(result_);
  }
  const YamlNode* root = doc.root.get();
  if (!root || root->kind == Kind::kNull) {
    // Every message has a position, even about a file with nothing in it.
    error({1, 1}, "no frontends defined (the file holds no configuration; see etc/weir.yaml)");
  } else if (root->kind != Kind::kMap) {
    error(root->mark, "expected a map with global, defaults, frontends and backends (got " +
                          describe(*root) + ")");
  } else {
    const Fields top = map_fields(*root, "top level", "key", " at the top level");
    reject_unknown(top, kTopNames, "at the top level");
    Scope scope{*this, "top level"};
    read_keys(kTopKeys, top, scope);
    if (const Field* f = top.find("frontends")) {
      load_frontends(*f->value, f->key_node->mark);
    } else {
      error(root->mark, "no frontends defined");
    }
    check_references();
  }
  sort_messages(result_.errors);
  sort_messages(result_.warnings);
  if (result_.errors.empty()) result_.config = std::move(config);
  return std::move(result_);
}

}  // namespace config_detail

LoadResult load_config_text(std::string_view text, const std::string& name) {
  return config_detail::Loader(name).load(text);
}

LoadResult load_config_file(const std::string& path) {
  const auto fail = [&](const char* what) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, std::string(what) + ": " + std::strerror(errno)});
    return result;
  };
  struct Closer {
    void operator()(FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<FILE, Closer> file(std::fopen(path.c_str(), "rb"));
  if (!file) return fail("cannot open");
  std::string text;
  char buffer[65536];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) {
    text.append(buffer, n);
    // A configuration is a few kilobytes; this stops `-f /dev/zero` from eating memory.
    if (text.size() > config_detail::kMaxFileSize) {
      LoadResult result;
      result.errors.push_back({path, 0, 0, "file too large (more than 16m)"});
      return result;
    }
  }
  if (std::ferror(file.get())) return fail("cannot read");
  return load_config_text(text, path);
}

}  // namespace weir
