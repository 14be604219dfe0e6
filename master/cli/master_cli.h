#pragma once
// The master CLI: a Unix stream socket (-S PATH or global.master_socket) that
// answers operators and weirctl. One command per line (or several joined by
// ';'); every answer ends with an empty line. A client may keep the connection
// open and send more; the master closes it after the client has finished
// sending and every answer has been written.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base/fd.h"

namespace weir {

class CliClient {
 public:
  explicit CliClient(UniqueFd fd, uint64_t id) : fd_(std::move(fd)), id_(id) {}
  int fd() const { return fd_.get(); }
  uint64_t id() const { return id_; }

 private:
  friend class MasterCli;
  UniqueFd fd_;
  uint64_t id_;
  std::string in_;
  std::string out_;
  bool eof_ = false;
  bool waiting_ = false;  // an answer is pending (e.g. a reload in progress)
};

class MasterCli {
 public:
  // Returns the answer to one command (without the final empty line), or nullopt
  // when the answer comes later through answer().
  using Handler = std::function<std::optional<std::string>(CliClient&, const std::string&)>;

  explicit MasterCli(Handler handler) : handler_(std::move(handler)) {}
  ~MasterCli();
  // Binds the socket (replacing a stale one), mode 0600.
  bool listen(const std::string& path, std::string* error);
  bool active() const { return listen_fd_.valid(); }

  // For poll(): the listening fd first, then one per client.
  void collect_fds(std::vector<int>* fds, std::vector<short>* events) const;
  void on_ready(int fd, short revents);
  // Delivers a deferred answer to the client `id` (if it is still connected).
  void answer(uint64_t id, const std::string& text);
  // Inherited across a master re-exec (binary upgrade).
  int listen_fd() const { return listen_fd_.get(); }
  void adopt_listen_fd(UniqueFd fd, const std::string& path);
  const std::string& path() const { return path_; }
  // The socket of a connected client (-1 if it is gone), and taking one back after
  // a re-exec, still waiting for its answer.
  int client_fd(uint64_t id) const;
  void adopt_client(UniqueFd fd, uint64_t id);

 private:
  void accept_all();
  void process(CliClient& c);
  void flush(CliClient& c);
  void drop_closed();

  Handler handler_;
  UniqueFd listen_fd_;
  std::string path_;
  std::vector<std::unique_ptr<CliClient>> clients_;
  uint64_t next_id_ = 1;
};

}  // namespace weir
