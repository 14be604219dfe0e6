#include "master/cli/master_cli.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/base/command_line.h"
#include "common/base/log.h"
#include "common/base/net.h"

namespace weir {
MasterCli::~MasterCli() {
  if (listen_fd_ && !path_.empty()) ::unlink(path_.c_str());
}

bool MasterCli::listen(const std::string& path, std::string* error) {
  // A socket file left by a master that died is stale and replaced; one that
  // answers belongs to another running weir.
  UniqueFd fd = net::listen_unix(path, 0600, 16, error);
  if (!fd) {
    *error = "master socket: " + *error;
    return false;
  }
  listen_fd_ = std::move(fd);
  path_ = path;
  return true;
}

void MasterCli::adopt_listen_fd(UniqueFd fd, const std::string& path) {
  listen_fd_ = std::move(fd);
  path_ = path;
}

int MasterCli::client_fd(uint64_t id) const {
  for (const auto& c : clients_)
    if (c->id() == id) return c->fd();
  return -1;
}

void MasterCli::adopt_client(UniqueFd fd, uint64_t id) {
  net::set_nonblocking(fd.get());
  auto c = std::make_unique<CliClient>(std::move(fd), id);
  c->waiting_ = true;
  c->eof_ = true;  // it sent its command; only the answer is left to give
  clients_.push_back(std::move(c));
  if (id >= next_id_) next_id_ = id + 1;
}

void MasterCli::collect_fds(std::vector<int>* fds, std::vector<short>* events) const {
  if (!listen_fd_) return;
  fds->push_back(listen_fd_.get());
  events->push_back(POLLIN);
  for (const auto& c : clients_) {
    fds->push_back(c->fd());
    short ev = 0;
    if (!c->eof_) ev |= POLLIN;
    if (!c->out_.empty()) ev |= POLLOUT;
    events->push_back(ev);
  }
}

void MasterCli::on_ready(int fd, short revents) {
  if (fd == listen_fd_.get()) {
    accept_all();
    return;
  }
  for (auto& c : clients_) {
    if (c->fd() != fd) continue;
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
          c->in_.append(buf, static_cast<size_t>(n));
          if (c->in_.size() > command_line::kMaxPending) c->eof_ = true;  // a runaway client
          continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) c->eof_ = true;
        break;
      }
      process(*c);
    }
    flush(*c);
    break;
  }
  drop_closed();
}

void MasterCli::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    clients_.push_back(std::make_unique<CliClient>(UniqueFd(fd), next_id_++));
  }
}

void MasterCli::process(CliClient& c) {
  while (!c.waiting_) {
    std::optional<std::string> line = command_line::take_line(&c.in_, c.eof_);
    if (!line) return;
    std::vector<std::string_view> commands = command_line::split_commands(*line);
    for (size_t i = 0; i < commands.size(); ++i) {
      std::optional<std::string> answer = handler_(c, std::string(commands[i]));
      if (!answer) {
        // Deferred: the remaining commands run after the answer.
        c.waiting_ = true;
        std::string rest;
        for (size_t j = i + 1; j < commands.size(); ++j) (rest += commands[j]) += ';';
        if (!rest.empty()) c.in_.insert(0, rest + "\n");
        return;
      }
      c.out_ += *answer;
      if (!answer->empty() && answer->back() != '\n') c.out_ += '\n';
      c.out_ += '\n';
    }
  }
}

void MasterCli::answer(uint64_t id, const std::string& text) {
  for (auto& c : clients_) {
    if (c->id() != id) continue;
    c->out_ += text;
    if (!text.empty() && text.back() != '\n') c->out_ += '\n';
    c->out_ += '\n';
    c->waiting_ = false;
    process(*c);
    flush(*c);
    break;
  }
  drop_closed();
}

void MasterCli::flush(CliClient& c) {
  while (!c.out_.empty()) {
    ssize_t n = ::send(c.fd(), c.out_.data(), c.out_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    c.out_.clear();
    c.eof_ = true;
    c.in_.clear();
    c.waiting_ = false;
    return;
  }
}

void MasterCli::drop_closed() {
  for (size_t i = 0; i < clients_.size();) {
    CliClient& c = *clients_[i];
    bool done = c.eof_ && !c.waiting_ && c.out_.empty() && c.in_.find('\n') == std::string::npos;
    if (done && c.in_.empty()) {
      clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

}  // namespace weir
