// `peers:` (doc/peers.md): the cluster this node belongs to, its own name and
// key, and every node with its address and public keys. Read after global and
// before stick_tables, whose `sync: true` needs it.

#include <unistd.h>

#include "common/base/curve_keys.h"
#include "common/config/load/loader.h"
#include "common/stick/table.h"

namespace weir::config_detail {
namespace {

struct PeersScope : Scope {
  PeersConfig& out;
};

bool read_name(PeersScope& s, const YamlNode& v, const std::string& what, std::string& out) {
  auto name = s.text_value(v, what, "a name");
  if (!name) return false;
  if (!valid_name(*name)) {
    s.error(v.mark,
            what + ": invalid name " + quoted(*name) + " (use letters, digits, '_', '.' and '-')");
    return false;
  }
  out = *name;
  return true;
}

bool read_cluster(PeersScope& s, const YamlNode& v, const std::string& what) {
  return read_name(s, v, what, s.out.cluster);
}

bool read_local(PeersScope& s, const YamlNode& v, const std::string& what) {
  return read_name(s, v, what, s.out.local);
}

bool read_bind(PeersScope& s, const YamlNode& v, const std::string& what) {
  auto text = s.text_value(v, what, "an address such as 0.0.0.0:7400");
  if (!text) return false;
  std::string why;
  auto addr = parse_address(*text, true, &why);
  if (!addr) {
    s.error(v.mark, what + ": " + quoted(*text) + ": " + why);
    return false;
  }
  s.out.bind = *addr;
  return true;
}

bool read_dead_after(PeersScope& s, const YamlNode& v, const std::string& what) {
  const auto ms = s.duration_value(v, what);
  if (!ms) return false;
  if (*ms <= 0) {
    s.error(v.mark,
            what + ": must be longer than 0 (a node's connections must outlive a lost packet)");
    return false;
  }
  s.out.dead_after_ms = *ms;
  return true;
}

bool read_secret_key_file(PeersScope& s, const YamlNode& v, const std::string& what) {
  auto path = s.text_value(v, what, "the path of a key file that `weirctl peers keygen` wrote");
  if (!path) return false;
  s.out.secret_key_file = *path;
  std::string why;
  auto key = curve::read_secret_file(*path, &why);
  if (!key) {
    s.error(v.mark, what + ": " + why);
    return false;
  }
  auto pub = curve::public_of(*key);
  if (!pub) {
    s.error(v.mark, what + ": " + *path + " holds no usable CURVE secret key");
    return false;
  }
  s.out.secret_key = *key;
  s.out.public_key = *pub;
  return true;
}

struct NodeScope : Scope {
  PeerNode& out;
};

bool read_node_address(NodeScope& s, const YamlNode& v, const std::string& what) {
  auto text = s.text_value(v, what, "host:port, such as 10.0.0.2:7400");
  if (!text) return false;
  std::string why;
  auto addr = parse_address(*text, false, &why);
  if (!addr) {
    s.error(v.mark, what + ": " + quoted(*text) + ": " + why);
    return false;
  }
  if (addr->port() == 0) {
    s.error(v.mark, what + ": " + quoted(*text) + " has no port");
    return false;
  }
  s.out.address = *text;
  s.out.addr = *addr;
  return true;
}

bool read_public_key(NodeScope& s, const YamlNode& v, const std::string& what) {
  std::vector<const YamlNode*> items;
  if (v.kind == Kind::kSequence) {
    for (const auto& item : v.items) items.push_back(item.get());
    if (items.empty() || items.size() > 2) {
      s.error(v.mark, what + ": one key, or a list of two while the node rotates its key");
      return false;
    }
  } else {
    items.push_back(&v);
  }
  bool ok = true;
  for (const YamlNode* item : items) {
    auto key = s.text_value(*item, what, "a Z85 public key from `weirctl peers keygen`");
    if (!key) {
      ok = false;
      continue;
    }
    std::string why;
    if (!curve::valid_key(*key, &why)) {
      s.error(item->mark, what + ": " + why);
      ok = false;
      continue;
    }
    s.out.public_keys.push_back(*key);
  }
  return ok;
}

constexpr Key<NodeScope> kNodeKeys[] = {{"address", read_node_address},
                                        {"public_key", read_public_key}};
constexpr auto kNodeNames = names_of(kNodeKeys);

// The rest is read by load_peers: nodes before local (whose default and check
// need them), and bind after local (its default is the local node's address).
constexpr Key<PeersScope> kPeersKeys[] = {
    {"cluster", read_cluster},
    {"local", read_local},
    {"bind", read_bind},
    {"secret_key_file", read_secret_key_file},
    {"dead_after", read_dead_after},
    {"nodes"},
};
constexpr auto kPeersNames = names_of(kPeersKeys);

constexpr KeyList kLists[] = {
    {"peers", kKeysOf, kPeersNames},
    {"peers.nodes.node", kKeysOf, kNodeNames},
};
const Registrar<KeyList> kRegister(kLists);

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return {};
  return name;
}

}  // namespace

void Loader::load_peers(const YamlNode& node) {
  PeersConfig& out = config.peers;
  out.mark = node.mark;
  const Fields fields = map_fields(node, "peers");
  reject_unknown(fields, kPeersNames, "in peers");
  PeersScope scope{{*this, "peers"}, out};
  read_keys(kPeersKeys, fields, scope);
  if (!fields.get("cluster")) {
    error(node.mark, "peers needs a cluster: a name every node of the cluster shares");
  }
  if (const YamlNode* nodes = fields.get("nodes")) {
    for (const Field& f : map_fields(*nodes, "peers: nodes", "node", " in peers: nodes").list) {
      const std::string label = "peers: node " + quoted(f.key);
      PeerNode n;
      n.mark = f.key_node->mark;
      if (!valid_name(f.key)) {
        error(f.key_node->mark, "peers: invalid node name " + quoted(f.key) +
                                    " (use letters, digits, '_', '.' and '-')");
        continue;
      }
      n.name = f.key;
      const Fields nf = map_fields(*f.value, label);
      reject_unknown(nf, kNodeNames, "in " + label);
      NodeScope ns{{*this, label}, n};
      if (!read_keys(kNodeKeys, nf, ns)) continue;
      if (!nf.get("address")) {
        error(f.value->mark, label + " needs an address: where its peers agent listens");
        continue;
      }
      if (!nf.get("public_key")) {
        error(f.value->mark, label + " needs a public_key (`weirctl peers keygen` prints it)");
        continue;
      }
      out.nodes.push_back(std::move(n));
    }
  } else {
    error(node.mark, "peers needs nodes: every node of the cluster, this one included");
  }
  const bool local_given = fields.get("local") != nullptr;
  if (!local_given) out.local = host_name();
  const SourceMark local_mark = local_given ? fields.get("local")->mark : node.mark;
  const PeerNode* self = out.node(out.local);
  if (!fields.get("nodes")) return;
  if (!self) {
    std::string known;
    for (const PeerNode& n : out.nodes) known += (known.empty() ? "" : ", ") + n.name;
    error(local_mark, "peers: this node, " + quoted(out.local) +
                          (local_given ? "" : " (the host name; set peers.local to choose)") +
                          ", is not in nodes (listed: " + (known.empty() ? "none" : known) + ")");
    return;
  }
  out.local_id = stick::node_id(out.local);
  for (const PeerNode& n : out.nodes) {
    if (&n != self && stick::node_id(n.name) == out.local_id) {
      error(n.mark, "peers: nodes " + quoted(n.name) + " and " + quoted(self->name) +
                        " have the same number in stamps; rename one");
    }
  }
  if (!fields.get("bind")) out.bind = self->addr;
  if (!fields.get("secret_key_file")) {
    error(node.mark, "peers needs secret_key_file: this node's key (`weirctl peers keygen FILE`)");
  } else if (!out.public_key.empty()) {
    bool listed = false;
    for (const std::string& k : self->public_keys) listed = listed || k == out.public_key;
    if (!listed) {
      error(fields.get("secret_key_file")->mark,
            "peers: the key in " + out.secret_key_file + " (public key " + out.public_key +
                ") is not the one nodes lists for " + quoted(out.local) +
                ": the other nodes would refuse this one");
    }
  }
}

}  // namespace weir::config_detail
