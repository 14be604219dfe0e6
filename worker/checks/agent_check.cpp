#include "worker/checks/agent_check.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/base/log.h"
#include "common/base/net.h"
#include "worker/backend/backend.h"
#include "worker/thread_context.h"

namespace weir {
namespace {
constexpr size_t kMaxReply = 1024;
constexpr int64_t kMaxTimeoutMs = 5000;

std::optional<int> number(std::string_view s, int max) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0 || s.empty()) return std::nullopt;
  return std::min(v, max);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}
}  // namespace

AgentReply parse_agent_reply(std::string_view line) {
  AgentReply r;
  size_t hash = line.find('#');
  if (hash != std::string_view::npos) {
    std::string_view reason = line.substr(hash + 1);
    while (!reason.empty() && (reason.front() == ' ' || reason.front() == '\t'))
      reason.remove_prefix(1);
    while (!reason.empty() && (reason.back() == ' ' || reason.back() == '\t' ||
                               reason.back() == '\r' || reason.back() == '\n'))
      reason.remove_suffix(1);
    r.reason = std::string(reason);
    line = line.substr(0, hash);
  }
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find_first_of(", \t\r\n", pos);
    if (end == std::string_view::npos) end = line.size();
    std::string word = lower(line.substr(pos, end - pos));
    pos = end + 1;
    if (word.empty()) continue;
    std::string_view w(word);
    bool ok = true;
    if (w.rfind("weight:", 0) == 0) {
      std::string_view v = w.substr(7);
      if (!v.empty() && v.back() == '%') {
        auto n = number(v.substr(0, v.size() - 1), kMaxWeightPercent);
        ok = n.has_value();
        if (n) r.weight_percent = *n;
      } else {
        auto n = number(v, kMaxServerWeight);
        ok = n.has_value();
        if (n) r.weight = *n;
      }
    } else if (w.back() == '%') {
      auto n = number(w.substr(0, w.size() - 1), kMaxWeightPercent);
      ok = n.has_value();
      if (n) r.weight_percent = *n;
    } else if (w.rfind("maxconn:", 0) == 0) {
      auto n = number(w.substr(8), 1000000);
      ok = n.has_value();
      if (n) r.maxconn = *n;
    } else if (w == "ready") {
      r.admin = AgentReply::Admin::kReady;
    } else if (w == "drain") {
      r.admin = AgentReply::Admin::kDrain;
    } else if (w == "maint") {
      r.admin = AgentReply::Admin::kMaint;
    } else if (w == "up") {
      r.op = AgentReply::Op::kUp;
    } else if (w == "down" || w == "fail" || w == "stopped") {
      r.op = AgentReply::Op::kDown;
    } else {
      ok = false;
    }
    if (!ok) r.unknown += (r.unknown.empty() ? "" : " ") + word;
  }
  return r;
}

AgentChecker::AgentChecker(ThreadContext& ctx, Backend& backend, Server& server)
    : ctx_(ctx),
      backend_(backend),
      server_(server),
      cfg_(server.config().agent),
      timer_(ctx.loop().timers(), &AgentChecker::on_timer, this) {}

AgentChecker::~AgentChecker() {
  timer_.disarm();
}

void AgentChecker::start(int64_t first_delay_ms) {
  timer_.set(ctx_.loop().now_ms() + std::max<int64_t>(1, first_delay_ms));
}

void AgentChecker::stop() {
  stopped_ = true;
  timer_.disarm();
  fd_.reset();
  running_ = false;
}

void AgentChecker::on_timer(void* self) {
  auto* a = static_cast<AgentChecker*>(self);
  if (a->stopped_) return;
  if (a->server_.deleted()) {
    a->stopped_ = true;
    a->fd_.reset();
    return;
  }
  if (a->running_) {
    a->finish("L4TOUT", a->connecting_ ? "agent timeout: no connection" : "agent timeout: no reply",
              nullptr);
    return;
  }
  a->begin();
}

void AgentChecker::begin() {
  running_ = true;
  connecting_ = true;
  started_ms_ = ctx_.loop().now_ms();
  reply_.clear();
  sent_ = 0;
  SockAddr addr = cfg_.addr ? *cfg_.addr : server_.addr();
  addr.set_port(cfg_.port);
  int64_t timeout = cfg_.timeout ? cfg_.timeout : std::min(cfg_.inter, kMaxTimeoutMs);
  timer_.set(started_ms_ + timeout);
  bool in_progress = false;
  int err = 0;
  fd_ = net::connect_tcp(addr, &in_progress, &err);
  if (!fd_) {
    finish("L4CON", std::string("agent unreachable: ") + std::strerror(err), nullptr);
    return;
  }
  if (!ctx_.loop().add(fd_.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) {
    finish("L4CON", "agent unreachable: cannot poll the socket", nullptr);
    return;
  }
  if (!in_progress) connected();
}

void AgentChecker::on_io(uint32_t events) {
  if (!running_ || !fd_) return;
  if (connecting_) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = net::socket_error(fd_.get());
    if (err != 0) {
      finish("L4CON", std::string("agent unreachable: ") + std::strerror(err), nullptr);
      return;
    }
    connected();
    return;
  }
  if (sent_ < cfg_.send.size()) {
    connected();
    return;
  }
  read_reply();
}

void AgentChecker::connected() {
  connecting_ = false;
  while (sent_ < cfg_.send.size()) {
    ssize_t n = ::send(fd_.get(), cfg_.send.data() + sent_, cfg_.send.size() - sent_, MSG_NOSIGNAL);
    if (n > 0) {
      sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    finish("L4CON", std::string("agent send error: ") + std::strerror(errno), nullptr);
    return;
  }
  read_reply();
}

void AgentChecker::read_reply() {
  char buf[512];
  bool closed = false;
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n > 0) {
      reply_.append(buf, static_cast<size_t>(n));
      if (reply_.find('\n') != std::string::npos || reply_.size() >= kMaxReply) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;  // the line is not complete yet
    closed = true;
    break;
  }
  (void)closed;
  std::string line = reply_.substr(0, std::min(reply_.find('\n'), kMaxReply));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (line.empty()) {
    finish("L7RSP", "agent sent an empty reply", nullptr);
    return;
  }
  finish("L7OK", line, &line);
}

void AgentChecker::finish(const char* status, const std::string& description,
                          const std::string* reply) {
  int64_t now = ctx_.loop().now_ms();
  running_ = false;
  fd_.reset();
  {
    std::lock_guard lock(server_.check_mu_);
    server_.agent_.status = status;
    server_.agent_.duration_ms = now - started_ms_;
    server_.agent_.description = description;
  }
  if (reply) apply(parse_agent_reply(*reply), *reply);
  if (!stopped_) timer_.set(std::max(now + 1, started_ms_ + cfg_.inter));
}

void AgentChecker::apply(const AgentReply& r, const std::string& line) {
  const char* be = backend_.name().c_str();
  const char* sv = server_.name().c_str();
  int64_t now = ctx_.loop().now_ms();
  if (!r.unknown.empty()) {
    log::warning("server %s/%s: the agent's reply '%s' has words weir does not know: %s", be, sv,
                 line.c_str(), r.unknown.c_str());
  }
  int weight = r.weight;
  if (r.weight_percent >= 0) {
    weight = static_cast<int>(
        weight_from_percent(server_.configured_weight(), static_cast<uint32_t>(r.weight_percent)));
  }
  if (weight >= 0 && static_cast<uint32_t>(weight) != server_.weight()) {
    log::notice("server %s/%s: weight %u -> %d (agent: %s)", be, sv, server_.weight(), weight,
                line.c_str());
    backend_.set_server_weight(&server_, static_cast<uint32_t>(weight), now);
  }
  if (r.maxconn >= 0 && static_cast<uint32_t>(r.maxconn) != server_.maxconn()) {
    log::notice("server %s/%s: maxconn %u -> %d (agent: %s)", be, sv, server_.maxconn(), r.maxconn,
                line.c_str());
    backend_.set_server_maxconn(&server_, static_cast<uint32_t>(r.maxconn));
  }
  if (r.admin != AgentReply::Admin::kNone) {
    AdminState st = r.admin == AgentReply::Admin::kReady   ? AdminState::kReady
                    : r.admin == AgentReply::Admin::kDrain ? AdminState::kDrain
                                                           : AdminState::kMaint;
    if (st != server_.admin_state()) {
      log::notice("server %s/%s: state %s -> %s (agent: %s)", be, sv,
                  admin_state_name(server_.admin_state()), admin_state_name(st), line.c_str());
      backend_.set_server_state(&server_, st, now);
    }
  }
  if (r.op != AgentReply::Op::kNone) {
    const bool down = r.op == AgentReply::Op::kDown;
    if (down != server_.agent_down()) {
      backend_.set_server_agent_down(&server_, down, now);
      int up_normal = 0, up_backup = 0;
      for (Server* s : backend_.servers()) {
        if (s->selectable()) ++(s->backup() ? up_backup : up_normal);
      }
      const std::string why = r.reason.empty() ? line : r.reason;
      if (down) {
        log::warning(
            "server %s/%s is DOWN, reason: Agent says '%s'. %d active and %d backup servers left.",
            be, sv, why.c_str(), up_normal, up_backup);
      } else {
        log::notice(
            "server %s/%s is UP for its agent again, reason: Agent says '%s'. %d active and %d "
            "backup servers online.",
            be, sv, why.c_str(), up_normal, up_backup);
      }
    }
  }
}

}  // namespace weir
