#include "common/base/build_id.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/base/fd.h"
#include "common/base/hex.h"

namespace weir {
namespace {

bool read_at(int fd, void* buf, size_t len, off_t off) {
  return ::pread(fd, buf, len, off) == static_cast<ssize_t>(len);
}

std::string gnu_build_id(int fd) {
  Elf64_Ehdr eh{};
  if (!read_at(fd, &eh, sizeof eh, 0) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
    return "";
  }
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    if (!read_at(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph))) return "";
    if (ph.p_type != PT_NOTE || ph.p_filesz > (1u << 20)) continue;
    std::vector<unsigned char> notes(ph.p_filesz);
    if (!read_at(fd, notes.data(), notes.size(), static_cast<off_t>(ph.p_offset))) return "";
    size_t pos = 0;
    while (pos + sizeof(Elf64_Nhdr) <= notes.size()) {
      Elf64_Nhdr nh{};
      std::memcpy(&nh, notes.data() + pos, sizeof nh);
      size_t name_off = pos + sizeof nh;
      size_t desc_off = name_off + ((nh.n_namesz + 3u) & ~3u);
      size_t next = desc_off + ((nh.n_descsz + 3u) & ~3u);
      if (next > notes.size()) break;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
          std::memcmp(notes.data() + name_off, "GNU", 4) == 0) {
        return to_hex(notes.data() + desc_off, nh.n_descsz);
      }
      pos = next;
    }
  }
  return "";
}

}  // namespace

std::string executable_id(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  std::string id = gnu_build_id(fd.get());
  if (!id.empty()) return "build-id:" + id;
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return "";
  return "file:" + std::to_string(st.st_size) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace weir
