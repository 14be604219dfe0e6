// The cluster's ZAP handler (zap.h).

#include "peers/cluster/zap.h"

#include <zmq.h>

#include <vector>

#include "common/base/log.h"

namespace weir::peers {

std::string unmapped(std::string address) {
  if (address.rfind("::ffff:", 0) == 0 && address.find('.') != std::string::npos) {
    address.erase(0, 7);
  }
  return address;
}

ZapHandler::ZapHandler(zmq::context_t& ctx) : socket_(ctx, zmq::socket_type::rep) {
  socket_.set(zmq::sockopt::linger, 0);
}

bool ZapHandler::bind(std::string* error) {
  try {
    socket_.bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    *error = std::string("cannot start the CURVE authentication handler: ") + e.what();
    return false;
  }
  return true;
}

void ZapHandler::allow(const PeersConfig& cfg) {
  node_of_key_.clear();
  for (const PeerNode& n : cfg.nodes) {
    if (n.name == cfg.local) continue;
    for (const std::string& text : n.public_keys) {
      uint8_t raw[32];
      if (zmq_z85_decode(raw, text.c_str())) {
        node_of_key_[std::string(reinterpret_cast<char*>(raw), sizeof raw)] = n.name;
      }
    }
  }
}

void ZapHandler::handle(
    const std::function<void(const std::string&, const std::string&)>& refused) {
  for (;;) {
    std::vector<zmq::message_t> frames;
    try {
      zmq::message_t first;
      if (!socket_.recv(first, zmq::recv_flags::dontwait)) return;
      bool more = first.more();
      frames.push_back(std::move(first));
      while (more) {
        zmq::message_t f;
        if (!socket_.recv(f, zmq::recv_flags::none)) break;
        more = f.more();
        frames.push_back(std::move(f));
      }
    } catch (const zmq::error_t& e) {
      log::error("peers: authentication handler: %s", e.what());
      return;
    }
    // version, request id, domain, address, routing id, mechanism, credentials
    std::string status = "400", text = "not a CURVE request", user;
    const std::string address = unmapped(frames.size() > 3 ? frames[3].to_string() : "");
    if (frames.size() >= 7 && frames[0].to_string() == "1.0" && frames[5].to_string() == "CURVE" &&
        frames[6].size() == 32) {
      auto it = node_of_key_.find(frames[6].to_string());
      if (it != node_of_key_.end()) {
        status = "200";
        text = "OK";
        user = it->second;
      } else {
        char z85[41] = {};
        zmq_z85_encode(z85, static_cast<const uint8_t*>(frames[6].data()), 32);
        text = "key not listed";
        refused(address, z85);
      }
    } else {
      refused(address, "");
    }
    const std::string request_id = frames.size() > 1 ? frames[1].to_string() : std::string();
    try {
      socket_.send(zmq::buffer(std::string("1.0")), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(status), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(user), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(std::string()), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      log::error("peers: authentication handler: %s", e.what());
      return;
    }
  }
}

}  // namespace weir::peers
