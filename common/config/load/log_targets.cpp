// global.log: where access-log lines go (stdout, stderr, a file, syslog) and in
// which format. An entry is a target or a map {target, format, address, ...}.

#include "common/base/address.h"
#include "common/config/load/loader.h"
#include "common/config/log_format.h"

namespace weir::config_detail {
namespace {

struct LogScope : Scope {
  LogSink& out;
  const YamlNode& entry;
  bool syslog;  // the target is syslog: address, framing, facility and tag apply
};

constexpr Choice<LogTarget> kTargets[] = {
    {"stdout", LogTarget::kStdout}, {"stderr", LogTarget::kStderr}, {"syslog", LogTarget::kSyslog}};
constexpr auto kTargetNames = names_of(kTargets);

constexpr Choice<LogFormat> kFormats[] = {{"text", LogFormat::kText},
                                          {"http", LogFormat::kHttp},
                                          {"tcp", LogFormat::kTcp},
                                          {"json", LogFormat::kJson}};
constexpr auto kFormatNames = names_of(kFormats);

constexpr Choice<SyslogFraming> kFramings[] = {{"rfc3164", SyslogFraming::kRfc3164},
                                               {"rfc5424", SyslogFraming::kRfc5424}};
constexpr auto kFramingNames = names_of(kFramings);

constexpr Choice<int> kFacilities[] = {
    {"kern", 0},      {"user", 1},    {"mail", 2},    {"daemon", 3},  {"auth", 4},
    {"syslog", 5},    {"lpr", 6},     {"news", 7},    {"uucp", 8},    {"cron", 9},
    {"authpriv", 10}, {"ftp", 11},    {"local0", 16}, {"local1", 17}, {"local2", 18},
    {"local3", 19},   {"local4", 20}, {"local5", 21}, {"local6", 22}, {"local7", 23}};
constexpr auto kFacilityNames = names_of(kFacilities);

bool read_format(LogScope& s, const YamlNode& v, const std::string& what) {
  const auto text = s.text_value(v, what, join(kFormatNames) + " or a format string");
  if (!text) return false;
  if (const auto format = find_choice(kFormats, *text)) {
    s.out.format = *format;
    return true;
  }
  if (text->find('%') != std::string::npos) {
    std::string problem;
    size_t offset = 0;
    if (!logfmt::parse(*text, &problem, &offset)) {
      s.error(s.loader.mark_inside(v, offset), what + ": " + problem);
      return false;
    }
    s.out.format = LogFormat::kCustom;
    s.out.custom = *text;
    return true;
  }
  s.error(v.mark, s.label + ": unknown format " + quoted(*text) + " (expected " +
                      join(kFormatNames) +
                      " or a format string with %-variables such as \"%ci %ST %r\")");
  return false;
}

// address, framing, facility and tag: syslog only.
bool not_syslog(const LogScope& s, const YamlNode& v, const std::string& what) {
  if (s.syslog) return false;
  s.error(v.mark, what + " only applies to target: syslog");
  return true;
}

// A Unix datagram socket (default /dev/log) or host:port over UDP.
bool read_address(LogScope& s, const YamlNode& v, const std::string& what) {
  if (not_syslog(s, v, what)) return false;
  const auto address = s.text_value(v, what, "/dev/log or host:port for UDP");
  if (!address) return false;
  if (!address->empty() && address->front() == '/') {
    s.out.path = *address;
    s.out.framing = SyslogFraming::kRfc3164;
    return true;
  }
  std::string problem;
  std::string with_port = *address;
  // "host" or "[v6]" without a port: the syslog port.
  if (address->find(':') == std::string::npos ||
      (address->front() == '[' && address->back() == ']')) {
    with_port += ":514";
  }
  const auto addr = parse_address(with_port, /*allow_wildcard=*/false, &problem);
  if (!addr) {
    s.error(v.mark, s.label + ": syslog address " + quoted(*address) + ": " + problem);
    return false;
  }
  s.out.path.clear();
  s.out.syslog_addr = *addr;
  s.out.framing = SyslogFraming::kRfc5424;
  return true;
}

bool read_framing(LogScope& s, const YamlNode& v, const std::string& what) {
  return !not_syslog(s, v, what) &&
         choice<&LogSink::framing, kFramings>(s, v, what, s.label + ": unknown framing");
}

bool read_facility(LogScope& s, const YamlNode& v, const std::string& what) {
  if (not_syslog(s, v, what)) return false;
  const auto text = s.text_value(v, what, "local0..local7, daemon, ...");
  if (!text) return false;
  const auto facility = find_choice(kFacilities, *text);
  if (!facility) {
    s.error(v.mark, s.label + ": unknown syslog facility " + quoted(*text) +
                        " (expected local0..local7, daemon, user, auth, authpriv, ...)");
    return false;
  }
  s.out.facility = *facility;
  return true;
}

bool read_tag(LogScope& s, const YamlNode& v, const std::string& what) {
  if (not_syslog(s, v, what)) return false;
  const auto tag = s.text_value(v, what, "a program name such as weir");
  if (!tag) return false;
  if (tag->empty() || tag->size() > 32 || tag->find_first_of(" :[]\t\r\n") != std::string::npos) {
    s.error(v.mark, what + " " + quoted(*tag) +
                        " must be 1 to 32 characters without spaces, ':' or brackets");
    return false;
  }
  s.out.tag = *tag;
  return true;
}

constexpr Key<LogScope> kLogKeys[] = {
    {"target"},  // read first, by load_logs(): the other keys depend on it
    {"format", read_format},
    {"address", read_address},  // after target: the default /dev/log is set with it
    {"framing", read_framing},  // after address, which chooses the default framing
    {"facility", read_facility},
    {"tag", read_tag},
};
constexpr auto kLogNames = names_of(kLogKeys);

constexpr KeyList kLists[] = {
    {"global.log", kKeysOf, kLogNames},
    {"global.log.target", kValuesOf, kTargetNames},
    {"global.log.format", kValuesOf, kFormatNames},
    {"global.log.framing", kValuesOf, kFramingNames},
    {"global.log.facility", kValuesOf, kFacilityNames},
};
const Registrar<KeyList> kRegisterLog(kLists);

}  // namespace

void Loader::load_logs(const YamlNode& node) {
  const std::string label = "global: log";
  for (const YamlNode* entry : entries_of(node)) {
    LogSink sink;
    const YamlNode* target = entry;
    Fields fields;
    if (entry->kind == Kind::kMap) {
      fields = map_fields(*entry, "global.log entry");
      reject_unknown(fields, kLogNames, "in global.log entry");
      target = fields.get("target");
      if (!target) {
        error(entry->mark, label + ": entry has no target");
        continue;
      }
    }
    sink.mark = target->mark;  // where a file that cannot be opened is reported
    const auto text = text_value(*target, label, join(kTargetNames) + " or a file path");
    if (!text) continue;
    if (const auto known = find_choice(kTargets, *text)) {
      sink.target = *known;
    } else if (!text->empty() && text->front() == '/') {
      sink.target = LogTarget::kFile;
      sink.path = *text;
    } else {
      error(target->mark, label + ": invalid target " + quoted(*text) + " (expected " +
                              join(kTargetNames) + " or an absolute file path)");
      continue;
    }
    LogScope scope{{*this, label}, sink, *entry, sink.target == LogTarget::kSyslog};
    if (scope.syslog) {
      sink.path = "/dev/log";  // until an address says otherwise
      sink.framing = SyslogFraming::kRfc3164;
    }
    if (read_keys(kLogKeys, fields, scope)) config.global.logs.push_back(std::move(sink));
  }
}

}  // namespace weir::config_detail
