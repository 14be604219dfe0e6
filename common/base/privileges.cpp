// Dropping root (privileges.h).

#include "common/base/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weir {

bool drop_privileges(const std::string& user_name, const std::string& group_name,
                     std::string* error) {
  if (geteuid() != 0 || (user_name.empty() && group_name.empty())) return true;
  gid_t gid = 0;
  uid_t uid = 0;
  if (!group_name.empty()) {
    group* gr = getgrnam(group_name.c_str());
    if (!gr) {
      *error = "unknown group '" + group_name + "'";
      return false;
    }
    gid = gr->gr_gid;
  }
  passwd* pw = nullptr;
  if (!user_name.empty()) {
    pw = getpwnam(user_name.c_str());
    if (!pw) {
      *error = "unknown user '" + user_name + "'";
      return false;
    }
    uid = pw->pw_uid;
    if (group_name.empty()) gid = pw->pw_gid;
  }
  if (setgroups(0, nullptr) != 0 || setgid(gid) != 0) {
    *error = std::string("setgid: ") + std::strerror(errno);
    return false;
  }
  if (pw && setuid(uid) != 0) {
    *error = std::string("setuid: ") + std::strerror(errno);
    return false;
  }
  // Allow core dumps again after the identity change.
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  return true;
}

}  // namespace weir
